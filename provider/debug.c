#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <smartkey/smartkey.h>

#include "client.h"
#include "debug.h"

/*
 * The log may name keys and requests: created 0600, never through a
 * symbolic link (another local user could point it at a file of ours),
 * appended to when it exists. NULL with a line on stderr on refusal.
 */
static FILE *open_log(const char *path)
{
    struct stat st;
    FILE *stream;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600);

    if (fd < 0) {
        fprintf(stderr,
                errno == ELOOP
                    ? "smartkey: debug log %s is a symbolic link: refused; "
                      "logging to stderr\n"
                    : "smartkey: cannot open debug log %s (%s); logging to "
                      "stderr\n",
                SK_ESCAPED(path), strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
        fprintf(stderr,
                "smartkey: debug log %s is not a regular file: refused; "
                "logging to stderr\n",
                SK_ESCAPED(path));
        close(fd);
        return NULL;
    }
    if (st.st_uid != geteuid()) {
        fprintf(stderr,
                "smartkey: debug log %s belongs to another user (uid %ld): "
                "refused; logging to stderr\n",
                SK_ESCAPED(path), (long)st.st_uid);
        close(fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
        fprintf(stderr,
                "smartkey: warning: debug log %s is readable or writable by "
                "group or others (mode %04o): it names keys and requests; "
                "chmod 600 it\n",
                SK_ESCAPED(path), (unsigned)(st.st_mode & 07777));
    stream = fdopen(fd, "a");
    if (stream == NULL)
        close(fd);
    return stream;
}

int sk_debug_level;
static FILE *debug_stream;
static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static const char *debug_cnf_value;

/* "1" | "N" | "level:N[,file:PATH]" (the parts in any order) */
static void parse_debug_setting(const char *setting)
{
    int level = 0;
    const char *path = NULL;
    char *copy, *part, *save = NULL;

    if (setting == NULL || *setting == '\0')
        return;
    copy = OPENSSL_strdup(setting);
    if (copy == NULL)
        return;
    for (part = strtok_r(copy, ",", &save); part != NULL;
         part = strtok_r(NULL, ",", &save)) {
        if (strncmp(part, "level:", 6) == 0)
            level = atoi(part + 6);
        else if (strncmp(part, "file:", 5) == 0)
            path = setting + (part + 5 - copy);
        else if (part[0] >= '0' && part[0] <= '9')
            level = atoi(part);
        else
            fprintf(stderr,
                    "smartkey: debug setting (%s or debug) part '%s' is not "
                    "understood (use 1, 2 or 3, "
                    "level:N or file:PATH); ignored\n",
                    SMARTKEY_ENV_DEBUG, SK_ESCAPED(part));
    }
    /* a log file asked for without a level: errors at least */
    if (path != NULL && level == 0)
        level = 1;
    if (level > 0 && path != NULL) {
        /* the path ends where the next ",option" begins */
        size_t len = strcspn(path, ",");
        char *file_name = OPENSSL_strndup(path, len);

        if (file_name != NULL) {
            debug_stream = open_log(file_name);
            if (debug_stream != NULL)
                setvbuf(debug_stream, NULL, _IOLBF, 0);
            OPENSSL_free(file_name);
        }
    }
    OPENSSL_free(copy);
    if (debug_stream == NULL)
        debug_stream = stderr;
    sk_debug_level = level;
}

static void read_debug_setting(void)
{
    const char *env = secure_getenv(SMARTKEY_ENV_DEBUG);

    parse_debug_setting(env != NULL ? env : debug_cnf_value);
}

void sk_debug_init(const char *cnf_value)
{
    debug_cnf_value = cnf_value;
    pthread_once(&debug_once, read_debug_setting);
    debug_cnf_value = NULL;
}

void sk_debug_write(int level, const char *file, int line, const char *func,
                    const char *fmt, ...)
{
    char message[1024];
    va_list args;
    const char *base = strrchr(file, '/');

    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    /* one fprintf per line so lines of concurrent threads do not mix; a
       name with a line break cannot forge a line */
    fprintf(debug_stream, "smartkey[%ld] %d %s:%d %s: %s\n", (long)getpid(),
            level, base != NULL ? base + 1 : file, line, func,
            sk_escape_text(message, SIZE_MAX, (char[2048]){0}, 2048));
}

void sk_debug_client_log(void *arg, int level, const char *msg)
{
    if (sk_debug_level >= level)
        fprintf(debug_stream, "smartkey[%ld] %d client: %s\n", (long)getpid(),
                level, SK_ESCAPED(msg));
}

#define REPORTED_MAX 64
static pthread_mutex_t reported_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *topic; /* a string literal of the caller: never freed */
    char kid[40];
} reported[REPORTED_MAX];
static size_t reported_count;

static int first_report(const char *topic, const char *kid)
{
    int first = 1;

    pthread_mutex_lock(&reported_lock);
    for (size_t i = 0; i < reported_count && first; i++)
        first = strcmp(reported[i].topic, topic) != 0 ||
                strcmp(reported[i].kid, kid) != 0;
    if (first && reported_count < REPORTED_MAX) {
        reported[reported_count].topic = topic;
        snprintf(reported[reported_count].kid,
                 sizeof(reported[reported_count].kid), "%s", kid);
        reported_count++;
    }
    pthread_mutex_unlock(&reported_lock);
    return first;
}

void sk_report_once(const char *topic, const char *kid, const char *fmt, ...)
{
    char message[1024];
    va_list args;

    if (!first_report(topic, kid != NULL ? kid : ""))
        return;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    fprintf(stderr, "smartkey: error: %s\n",
            sk_escape_text(message, SIZE_MAX, (char[SK_ESCAPE_MAX]){0},
                           SK_ESCAPE_MAX));
}
