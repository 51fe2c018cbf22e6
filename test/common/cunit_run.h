/*
 * The main of the CUnit programs of test/: one suite of tests, CUnit's
 * verbose report, then "N passed, N failed" and the exit status ctest
 * reads. Header only: the CUnit programs do not all link test_common.c
 * (CMake target smartkey_test_cunit).
 */
#ifndef SMARTKEY_TEST_CUNIT_RUN_H
#define SMARTKEY_TEST_CUNIT_RUN_H

#include <stddef.h>
#include <stdio.h>

#include <CUnit/Basic.h>

typedef struct {
    const char *name;
    CU_TestFunc fn;
} cunit_test;

/* A table entry named after its test function. */
#define CUNIT_TEST(f)                                                          \
    {                                                                          \
#f, f                                                                  \
    }
#define CUNIT_COUNT(tests) (sizeof(tests) / sizeof((tests)[0]))

/*
 * The one argument of a program that loads the provider: the directory of
 * the module. NULL, after the usage on stderr, when it is not given.
 */
static inline const char *cunit_module_dir(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE-DIR\n", argv[0]);
        return NULL;
    }
    return argv[1];
}

/*
 * Runs count tests in one suite called name (init and clean may be NULL);
 * a suite whose set-up failed counts all its tests as failed. Returns
 * main's exit status: 0 when all passed, 1 when one failed, 2 when CUnit
 * could not start.
 */
static inline int cunit_run(const char *name, CU_InitializeFunc init,
                            CU_CleanupFunc clean, const cunit_test *tests,
                            size_t count)
{
    CU_pSuite suite;
    unsigned run, failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite(name, init, clean);
    if (suite == NULL) {
        CU_cleanup_registry();
        return 2;
    }
    for (size_t i = 0; i < count; i++)
        CU_add_test(suite, tests[i].name, tests[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    if (CU_get_number_of_suites_failed() > 0)
        failed = (unsigned)count;
    printf("%u passed, %u failed\n", run - CU_get_number_of_tests_failed(),
           failed);
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}

#endif
