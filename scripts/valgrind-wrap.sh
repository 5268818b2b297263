#!/bin/sh
# Run one unit-test program under valgrind. Check must not fork so that
# valgrind sees the test bodies; any memory error or definite leak fails it.
CK_FORK=no exec valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite "$@"
