#!/bin/sh
# Run sukid under valgrind for the integration tests (SUKID=this script).
# A memory error or a definite leak makes sukid exit 99, which the tests'
# clean-stop checks catch. The log goes next to the test's own logs.
# The delivery agent sukid re-executes runs under valgrind too
# (--trace-children), each process with a log of its own (%p).
exec valgrind --quiet --error-exitcode=99 --leak-check=full --trace-children=yes \
    --errors-for-leak-kinds=definite --track-fds=no \
    --log-file="${VALGRIND_LOG:-/tmp/valgrind-sukid.%p.log}" \
    "${SUKID_REAL:?}" "$@"
