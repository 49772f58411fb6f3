#!/usr/bin/env bash
# What the tests need from the system, installed where the machine allows it (root with apt-get):
# bubblewrap, the workers' sandbox; Debian's chromium, for the report page's browser tests; and
# slurm-wlm with munge, for the test that grades a class on a single-node Slurm cluster.
# Elsewhere it does nothing: the sandbox tests then say what is not enforced, and the browser and
# Slurm tests skip saying why (except where BRACKET_GRADER_REQUIRE_BROWSER or
# BRACKET_GRADER_REQUIRE_SLURM is set, as .ci/run sets them).
set -uo pipefail
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && { ! command -v bwrap >/dev/null || ! command -v chromium >/dev/null \
        || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; }; then
    echo "installing bubblewrap, chromium, slurm-wlm and munge (apt-get)..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap chromium slurm-wlm munge \
        >/dev/null; } || echo "could not install them: the tests that need them will say so" >&2
fi
exit 0
