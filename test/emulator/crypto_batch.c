/*
 * smartkey-emulator: /crypto/v1/keys/batch/{encrypt,decrypt,sign,verify}.
 *
 * Each item runs through the single-request handler; the call answers 200
 * with one result per item, in order (smartkey-api.md 3.6).
 */
#include "emulator.h"

#include <stdlib.h>

/* Bounds the work one request can cause (decision, see crypto.c). */
#define BATCH_MAX_ITEMS 1000

/*
 * Encrypt/decrypt items are {"kid":..,"request":{..}} with the key omitted
 * from the inner request; sign/verify items are complete requests.
 */
static json_t *item_request(json_t *item, int keyed)
{
    json_t *kid, *inner, *request;

    if (!keyed)
        return json_incref(item);
    kid = json_object_get(item, "kid");
    inner = json_object_get(item, "request");
    if (!json_is_string(kid) || !json_is_object(inner))
        return NULL;
    request = json_copy(inner);
    if (request != NULL)
        json_object_set_new(request, "key", json_pack("{s:O}", "kid", kid));
    return request;
}

static json_t *item_result(em_response *item_resp)
{
    json_t *result = json_pack("{s:i}", "status", item_resp->status);

    if (item_resp->status >= 200 && item_resp->status < 300) {
        json_object_set(result, "body",
                        item_resp->json ? item_resp->json : json_null());
    } else if (item_resp->text != NULL) {
        json_object_set_new(result, "error", json_string(item_resp->text));
    } else {
        char *text = item_resp->json ? json_dumps(item_resp->json, 0) : NULL;

        json_object_set_new(result, "error",
                            json_string(text ? text : "Request failed"));
        free(text);
    }
    return result;
}

static int run_batch(em_request *req, em_response *resp, int keyed,
                     em_handler handler)
{
    json_t *results, *item;
    size_t i;

    if (!json_is_array(req->json))
        return em_error(resp, 400, "The request body must be a JSON array");
    if (json_array_size(req->json) > BATCH_MAX_ITEMS)
        return em_error(resp, 400, "A batch holds at most %d items (got %zu)",
                        BATCH_MAX_ITEMS, json_array_size(req->json));
    results = json_array();
    json_array_foreach(req->json, i, item)
    {
        em_response item_resp = {0};
        em_request item_req = *req;

        item_req.json = item_request(item, keyed);
        item_req.body = NULL;
        item_req.body_len = 0;
        if (item_req.json == NULL)
            em_error(&item_resp, 400,
                     "Each item must be {\"kid\":..,\"request\":{..}}");
        else
            handler(&item_req, &item_resp);
        json_array_append_new(results, item_result(&item_resp));
        json_decref(item_req.json);
        json_decref(item_resp.json);
        free(item_resp.text);
    }
    return em_json(resp, 200, results);
}

int em_h_batch_encrypt(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 1, em_h_encrypt);
}

int em_h_batch_decrypt(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 1, em_h_decrypt);
}

int em_h_batch_sign(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 0, em_h_sign);
}

int em_h_batch_verify(em_request *req, em_response *resp)
{
    return run_batch(req, resp, 0, em_h_verify);
}
