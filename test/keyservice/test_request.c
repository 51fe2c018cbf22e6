/*
 * smartkey-keyservice's request parser and replay cache, case by case:
 * what Salesforce sends is accepted and read right; every malformed,
 * ambiguous or oversized request is refused with its status; key
 * identifiers, RequestIdentifiers and Basic credentials are extracted as
 * docs/byok/salesforce.md decides; a nonce is refused within its window
 * and accepted after it, and the capacity bound forgets the oldest.
 */
#include <string.h>

#include "keyservice.h"
#include "test_common.h"

static int parse(const char *head, ks_request *req)
{
    const char *why;

    return ks_parse_request(head, strlen(head), req, &why);
}

static int status_of(const char *head)
{
    ks_request req;

    return parse(head, &req);
}

static void accepted(void)
{
    ks_request req;
    int status;

    status = parse("GET /keys/key-1 HTTP/1.1\r\nHost: k\r\n"
                   "authorization:  Basic c2FsZXNmb3JjZTpwdw== \r\n"
                   "RequestIdentifier: key-1_e5ab58fd2ced013f2a46d5c8144dd439"
                   "\r\n\r\n",
                   &req);
    tc_check(status == 0 && strcmp(req.path, "/keys/key-1") == 0,
             "a callout is accepted and its path read");
    tc_check(req.has_authorization &&
                 strcmp(req.authorization, "Basic c2FsZXNmb3JjZTpwdw==") == 0,
             "the Authorization value is read (any case, blanks trimmed)");
    tc_check(req.has_request_id &&
                 strcmp(req.request_id,
                        "key-1_e5ab58fd2ced013f2a46d5c8144dd439") == 0,
             "the RequestIdentifier header is read");
    status = parse("GET /keys/key%2D1?a=b&requestId=e5ab58fd2ced013f2a46d5c81"
                   "44dd439 HTTP/1.0\r\n\r\n",
                   &req);
    tc_check(status == 0 && strcmp(req.path, "/keys/key-1") == 0 &&
                 strcmp(req.request_id, "e5ab58fd2ced013f2a46d5c8144dd439") ==
                     0,
             "the path is percent-decoded; requestId is read from the query");
    tc_check(status_of("GET /k HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 0,
             "Content-Length: 0 is no body");
}

static void refused(void)
{
    static const struct {
        const char *head;
        int status;
        const char *what;
    } cases[] = {
        {"GET /k HTTP/1.1\nHost: a\n\n", 400, "LF-only lines: 400"},
        {"GET /k HTTP/1.1\r\nHost: a\r\n", 400, "no empty line: 400"},
        {"POST /k HTTP/1.1\r\n\r\n", 405, "POST: 405"},
        {"GET /k HTTP/2.0\r\n\r\n", 505, "HTTP/2.0: 505"},
        {"GET k HTTP/1.1\r\n\r\n", 400, "a target that is not a path: 400"},
        {"GET /a%2Fb HTTP/1.1\r\n\r\n", 400, "an encoded slash: 400"},
        {"GET /a%00 HTTP/1.1\r\n\r\n", 400, "an encoded NUL: 400"},
        {"GET /a%zz HTTP/1.1\r\n\r\n", 400, "a malformed escape: 400"},
        {"GET /a%4 HTTP/1.1\r\n\r\n", 400, "a truncated escape: 400"},
        {"GET /k HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400,
         "a folded field: 400"},
        {"GET /k HTTP/1.1\r\nAuthorization: a\r\n"
         "Authorization: b\r\n\r\n",
         400, "Authorization twice: 400"},
        {"GET /k?requestId=aaaaaaaaaaaaaaaa HTTP/1.1\r\n"
         "RequestIdentifier: bbbbbbbbbbbbbbbb\r\n\r\n",
         400, "a RequestIdentifier in the query and a header: 400"},
        {"GET /k HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413,
         "a body announced: 413"},
        {"GET /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413,
         "a chunked body: 413"},
        {"GET /k HTTP/1.1\r\nA: b\r\n\r\nextra", 400,
         "bytes after the head: 400"},
    };
    char big[1200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        tc_check(status_of(cases[i].head) == cases[i].status, "%s",
                 cases[i].what);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    memcpy(big + 700, " HTTP/1.1\r\n\r\n", 14);
    tc_check(status_of(big) == 414, "a 700-byte target: 414");
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nAuthorization: ", 31);
    memcpy(big + 1000, "\r\n\r\n", 5);
    tc_check(status_of(big) == 431, "a 970-byte Authorization: 431");
}

static void routes_and_identifiers(void)
{
    char id[KS_MAX_KEY_ID + 1], nonce[KS_MAX_NONCE + 1], creds[64];
    const char *n32 = "e5ab58fd2ced013f2a46d5c8144dd439";
    char rid[80];

    tc_check(ks_route("/keys/key-1", "/keys", id, sizeof(id)) &&
                 strcmp(id, "key-1") == 0,
             "/keys/key-1 under /keys is key-1");
    tc_check(ks_route("/key-1", "", id, sizeof(id)) && strcmp(id, "key-1") == 0,
             "/key-1 under the empty prefix is key-1");
    tc_check(!ks_route("/keys/a/b", "/keys", id, sizeof(id)) &&
                 !ks_route("/keys/..", "/keys", id, sizeof(id)) &&
                 !ks_route("/keysx/a", "/keys", id, sizeof(id)) &&
                 !ks_route("/keys/", "/keys", id, sizeof(id)) &&
                 !ks_route("/keys/a b", "/keys", id, sizeof(id)),
             "nested, dot, other-prefix, empty and blank identifiers: none");

    tc_check(ks_request_nonce(n32, "key-1", nonce, sizeof(nonce)) == 1 &&
                 strcmp(nonce, n32) == 0,
             "a bare nonce is the nonce");
    snprintf(rid, sizeof(rid), "key_1_%s", n32);
    tc_check(ks_request_nonce(rid, "key_1", nonce, sizeof(nonce)) == 1 &&
                 strcmp(nonce, n32) == 0,
             "KEYID_NONCE (an identifier with '_') gives the nonce");
    snprintf(rid, sizeof(rid), "other_%s", n32);
    tc_check(ks_request_nonce(rid, "key-1", nonce, sizeof(nonce)) == -1,
             "another key identifier is a mismatch");
    tc_check(ks_request_nonce("short", "key-1", nonce, sizeof(nonce)) == 0 &&
                 ks_request_nonce("e5ab58fd2ced013f.2a46d5c8144dd439", "key-1",
                                  nonce, sizeof(nonce)) == 0 &&
                 ks_request_nonce("", "key-1", nonce, sizeof(nonce)) == 0,
             "short, dotted or empty nonces are malformed");

    tc_check(ks_basic_credentials("Basic c2FsZXNmb3JjZTpwdw==", creds,
                                  sizeof(creds)) == 13 &&
                 strcmp(creds, "salesforce:pw") == 0,
             "Basic credentials are decoded");
    tc_check(
        ks_basic_credentials("Bearer abc", creds, sizeof(creds)) < 0 &&
            ks_basic_credentials("Basic !!!!", creds, sizeof(creds)) < 0 &&
            ks_basic_credentials("Basic bm9jb2xvbg==", creds, sizeof(creds)) <
                0 &&
            ks_basic_credentials("Basic YQBiOmM=", creds, sizeof(creds)) < 0,
        "other schemes, bad base64, no colon, an embedded NUL: refused");
}

static void replays(void)
{
    ks_replay *r = ks_replay_new();
    char nonce[32];
    int i, evicted;

    tc_check(r != NULL &&
                 ks_replay_check(r, "aaaaaaaaaaaaaaaa", 1000, 60, 100) == 1,
             "a new nonce is accepted");
    tc_check(ks_replay_check(r, "aaaaaaaaaaaaaaaa", 1059, 60, 100) == 0,
             "the same nonce within the window is refused");
    tc_check(ks_replay_check(r, "aaaaaaaaaaaaaaaa", 1060, 60, 100) == 1,
             "after the window it is new again");
    for (i = 0; i < 20; i++) {
        snprintf(nonce, sizeof(nonce), "nonce-%010d", i);
        ks_replay_check(r, nonce, 2000, 60, 16);
    }
    evicted = ks_replay_check(r, "nonce-0000000000", 2000, 60, 16);
    tc_check(evicted == 1 &&
                 ks_replay_check(r, "nonce-0000000019", 2000, 60, 16) == 0,
             "beyond the capacity the oldest are forgotten, the newest kept");
    ks_replay_free(r);
}

int main(void)
{
    accepted();
    refused();
    routes_and_identifiers();
    replays();
    return tc_report();
}
