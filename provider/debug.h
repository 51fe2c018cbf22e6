/*
 * The per-call debug log: SMARTKEY_DEBUG="1" or "level:N[,file:PATH]"
 * (or the provider's "debug" parameter). Levels: 1 errors, 2 requests,
 * 3 details. Never receives a secret.
 */
#ifndef SMARTKEY_DEBUG_H
#define SMARTKEY_DEBUG_H

/* 0 when off; read once, then only compared */
extern int sk_debug_level;

/* Reads SMARTKEY_DEBUG (wins) or else cnf_value; later calls do nothing. */
void sk_debug_init(const char *cnf_value);

void sk_debug_write(int level, const char *file, int line, const char *func,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The sink handed to the REST client (sk_client_config.log). */
void sk_debug_client_log(void *arg, int level, const char *msg);

/*
 * An error an operator must see although the application drops the error
 * queue (a TLS server probing its key, cms clearing the queue): one line
 * "smartkey: error: MESSAGE" on stderr, once per topic and key id per
 * process, without SMARTKEY_DEBUG. Past a table of 64 pairs a line is
 * printed every time rather than never.
 */
void sk_report_once(const char *topic, const char *kid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SK_DEBUG(level, ...)                                                   \
    do {                                                                       \
        if (sk_debug_level >= (level))                                         \
            sk_debug_write((level), __FILE__, __LINE__, __func__,              \
                           __VA_ARGS__);                                       \
    } while (0)

#endif
