// Entry point of the doctest suite; the test cases live in the other tests/test_*.cpp files.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
