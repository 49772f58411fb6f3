#!/usr/bin/env bash
# What the tests need from the system, installed where the machine allows it (root with apt-get):
# bubblewrap, the workers' sandbox, and Debian's chromium, for the report page's browser tests.
# Elsewhere it does nothing: the sandbox tests then say what is not enforced, and the browser tests
# skip saying why (except where BRACKET_GRADER_REQUIRE_BROWSER is set, as .ci/run sets it).
set -uo pipefail
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && { ! command -v bwrap >/dev/null || ! command -v chromium >/dev/null; }; then
    echo "installing bubblewrap and chromium (apt-get)..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap chromium >/dev/null; } \
        || echo "could not install bubblewrap/chromium: the tests that need them will say so" >&2
fi
exit 0
