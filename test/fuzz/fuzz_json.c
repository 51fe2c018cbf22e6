/*
 * libFuzzer harness: the REST client's decoders of SmartKey's answers (a
 * hostile or broken server chooses these bytes). The first byte picks the
 * decoder: key info, key list, or the Base64 field of a crypto answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const sk_key_info *info)
{
    /* a decoded key must be usable without further checks */
    if (strlen(info->kid) != 36 ||
        (info->pub_key == NULL && info->pub_key_len != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data + 1;
    sk_key_info *info = NULL, **list = NULL;
    unsigned char *bytes = NULL;
    size_t count = 0, len = 0;
    sk_error err;

    if (size < 1)
        return 0;
    size--;
    switch (data[0] % 3) {
    case 0:
        if (sk_decode_key_info(body, size, &info, &err)) {
            check_info(info);
            sk_key_info_free(info);
        } else if (err.kind == SK_ERR_NONE) {
            abort(); /* a failure always says why */
        }
        break;
    case 1:
        if (sk_decode_key_list(body, size, &list, &count, &err)) {
            for (size_t i = 0; i < count; i++)
                check_info(list[i]);
            sk_key_info_list_free(list, count);
        } else if (err.kind == SK_ERR_NONE) {
            abort();
        }
        break;
    default:
        if (sk_decode_bytes(body, size, "signature", &bytes, &len, &err))
            OPENSSL_free(bytes);
        else if (err.kind == SK_ERR_NONE)
            abort();
        break;
    }
    return 0;
}
