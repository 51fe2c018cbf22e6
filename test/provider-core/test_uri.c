/* Unit tests of the smartkey: URI parser (provider/uri.c). */
#include <string.h>

#include "cunit_run.h"
#include "uri.h"

static sk_uri uri;
static char why[256];

static int parses(const char *text)
{
    sk_uri_clear(&uri);
    why[0] = '\0';
    return sk_uri_parse(text, &uri, why, sizeof(why));
}

static void test_name_is_percent_decoded(void)
{
    CU_ASSERT_TRUE(parses("smartkey:name=my%20key"));
    CU_ASSERT_STRING_EQUAL(uri.name, "my key");
    CU_ASSERT_PTR_NULL(uri.kid);
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_ANY);
}

static void test_name_keeps_semicolon_and_percent_when_escaped(void)
{
    CU_ASSERT_TRUE(parses("smartkey:name=a%3Bb%25c;type=public"));
    CU_ASSERT_STRING_EQUAL(uri.name, "a;b%c");
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_PUBLIC);
}

static void test_name_may_contain_equals_and_colon(void)
{
    CU_ASSERT_TRUE(parses("smartkey:name=a=b:c"));
    CU_ASSERT_STRING_EQUAL(uri.name, "a=b:c");
}

static void test_kid_and_type_private(void)
{
    CU_ASSERT_TRUE(parses(
        "smartkey:kid=0b5c1a2e-7f3d-4e8a-9c6b-5d4e3f2a1b0c;type=private"));
    CU_ASSERT_STRING_EQUAL(uri.kid, "0b5c1a2e-7f3d-4e8a-9c6b-5d4e3f2a1b0c");
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_PRIVATE);
}

static void test_double_slash_form_has_same_attributes(void)
{
    CU_ASSERT_TRUE(parses("smartkey://name=k1"));
    CU_ASSERT_STRING_EQUAL(uri.name, "k1");
}

static void test_empty_uri_means_every_key(void)
{
    CU_ASSERT_TRUE(parses("smartkey:"));
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_PTR_NULL(uri.kid);
    CU_ASSERT_TRUE(parses("smartkey://"));
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_TRUE(parses("smartkey:type=public"));
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_PUBLIC);
}

static void test_scheme_is_case_insensitive(void)
{
    CU_ASSERT_TRUE(parses("SmartKey:name=x"));
    CU_ASSERT_STRING_EQUAL(uri.name, "x");
}

static void test_empty_segments_are_ignored(void)
{
    CU_ASSERT_TRUE(parses("smartkey:name=x;;type=public;"));
    CU_ASSERT_STRING_EQUAL(uri.name, "x");
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_PUBLIC);
}

static void refused(const char *text, const char *expected_words)
{
    CU_ASSERT_FALSE(parses(text));
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_PTR_NULL(uri.kid);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, expected_words));
}

static void test_malformed_uris_are_refused_with_a_reason(void)
{
    refused("smartkey:colour=blue", "unknown attribute 'colour'");
    refused("smartkey:name=bad%zzescape", "percent-escape");
    refused("smartkey:name=bad%2", "percent-escape");
    refused("smartkey:name=bad%", "percent-escape");
    refused("smartkey:name=nul%00byte", "percent-escape");
    refused("smartkey:name=x;type=secret", "type=");
    refused("smartkey:name=", "empty key name");
    refused("smartkey:kid=not-a-uuid", "kid=");
    refused("smartkey:name=a;name=b", "given twice");
    refused("smartkey:name=a;kid=0b5c1a2e-7f3d-4e8a-9c6b-5d4e3f2a1b0c",
            "not both");
    refused("smartkey:justaname", "attribute=value");
    refused("pkcs11:object=x", "starts with");
    refused("smartkeyx:name=x", "starts with");
    refused(NULL, "starts with");
}

static void test_type_cert_asks_for_a_certificate(void)
{
    CU_ASSERT_TRUE(parses("smartkey:name=web;type=cert"));
    CU_ASSERT_STRING_EQUAL(uri.name, "web");
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_CERT);
    sk_uri_clear(&uri);
    CU_ASSERT_TRUE(parses("smartkey:type=cert"));
    CU_ASSERT_PTR_NULL(uri.name);
    CU_ASSERT_EQUAL(uri.type, SK_URI_TYPE_CERT);
    sk_uri_clear(&uri);
    refused("smartkey:name=web;type=certificate",
            "'private', 'public' or 'cert'");
    refused("smartkey:name=web;type=cert;type=cert", "given twice");
}

static void test_very_long_attribute_name_is_refused(void)
{
    refused("smartkey:averyveryveryverylongattribute=1", "expected name=");
}

int main(void)
{
    static const cunit_test tests[] = {
        {"name is percent-decoded", test_name_is_percent_decoded},
        {"escaped ; and % stay in the name",
         test_name_keeps_semicolon_and_percent_when_escaped},
        {"name may contain = and :", test_name_may_contain_equals_and_colon},
        {"kid and type=private", test_kid_and_type_private},
        {"type=cert asks for a certificate",
         test_type_cert_asks_for_a_certificate},
        {"smartkey:// form", test_double_slash_form_has_same_attributes},
        {"empty URI means every key", test_empty_uri_means_every_key},
        {"scheme is case-insensitive", test_scheme_is_case_insensitive},
        {"empty segments are ignored", test_empty_segments_are_ignored},
        {"malformed URIs are refused with a reason",
         test_malformed_uris_are_refused_with_a_reason},
        {"long attribute name is refused",
         test_very_long_attribute_name_is_refused},
    };
    int status = cunit_run("uri", NULL, NULL, tests, CUNIT_COUNT(tests));

    sk_uri_clear(&uri);
    return status;
}
