#!/bin/sh
# Run sukid under valgrind for the integration tests (SUKID=this script).
# A memory error or a definite leak makes sukid exit 99, which the tests'
# clean-stop checks catch. The log goes next to the test's own logs.
exec valgrind --quiet --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --track-fds=no \
    --log-file="${VALGRIND_LOG:-/tmp/valgrind-sukid.%p.log}" \
    "${SUKID_REAL:?}" "$@"
