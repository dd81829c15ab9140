#!/usr/bin/env bash
# Makes what tests/lake/check_spark.py runs with: a Python virtual
# environment holding Apache Spark (pyspark, which bundles Spark 4.3 and
# Hadoop 3.5.0) and, on request, the three jars that let Spark read s3://
# buckets through Hadoop's S3A connector.
#
# The venv lives outside the clone, under ~/.cache/tickflow (TF_CACHE_DIR
# overrides it), named after the hash of the pin list and the interpreter,
# so a second run on this machine (another clone, CI) reuses it and a
# changed pin list makes a new one. pyspark is published only as a source
# archive (456 MB), built here into a wheel with a pinned setuptools and no
# build isolation, so no build tool floats. Every package is pinned and
# installed with --no-deps; pip keeps no copy (the venv is the cache).
#
# The jars come from Maven Central, pinned by version and SHA-1: each is
# checked against the .sha1 file published beside it and against the
# SHA-1 written below. They go to spark-jars-hadoop-3.5.0/ in the same cache.
# hadoop-aws must match the Hadoop that pyspark bundles (3.5.0); the AWS
# SDK bundle is the version hadoop-project 3.5.0 names, and
# analyticsaccelerator-s3 is a compile dependency of hadoop-aws 3.5.0.
#
# Idempotent: when the venv (or the jar folder) is complete it makes no
# network call and returns at once. Concurrent callers wait on a lock.
#
# Usage: tests/env/spark.sh         prints the venv's python on stdout
#        tests/env/spark.sh jars    prints the jars, comma-separated (for
#                                   spark.jars)
# Needs Debian's python3, python3-venv and a Java 17 runtime
# (tests/env/deps.sh installs them).
#
# Measured here (2 cores): venv cold 38 s (456 MB download, wheel build,
# 516 MB on disk), warm 0.03 s; jars cold 3.6-4.3 s (689 MB), warm 0.03 s.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TF_SPARK_PINS=(py4j==0.10.9.9 pyspark==4.3.0)
TF_SPARK_BUILD_PINS=(setuptools==84.2.1)
HADOOP_VERSION=3.5.0
# Path under https://repo1.maven.org/maven2/ and SHA-1, one jar a line.
TF_SPARK_JARS=(
    "org/apache/hadoop/hadoop-aws/3.5.0/hadoop-aws-3.5.0.jar 9e594525d264c0db653c7f68da98b245f7d61ea5"
    "software/amazon/awssdk/bundle/2.35.4/bundle-2.35.4.jar 7252265e3970b214708e68a8b74a8fa8c875af1e"
    "software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/1.3.1/analyticsaccelerator-s3-1.3.1.jar 6c9bd0f6c440c9a78e82d272f5f0252d942419f6"
)
MAVEN=https://repo1.maven.org/maven2

cache=${TF_CACHE_DIR:-$HOME/.cache/tickflow}

jars() {
    local dir=$cache/spark-jars-hadoop-$HADOOP_VERSION
    local stamp=$dir/.tickflow-pins want list="" entry path sha file got published
    want=$(printf '%s\n' "${TF_SPARK_JARS[@]}")
    jars_ready() {
        [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || return 1
        for entry in "${TF_SPARK_JARS[@]}"; do
            [ -f "$dir/$(basename "${entry%% *}")" ] || return 1
        done
    }
    if ! jars_ready; then
        mkdir -p "$dir"
        exec 8>"$dir.lock"
        flock -w 900 8 || die "spark: timed out waiting for $dir.lock"
        if ! jars_ready; then
            rm -f "$stamp"
            for entry in "${TF_SPARK_JARS[@]}"; do
                path=${entry%% *}
                sha=${entry##* }
                file=$dir/$(basename "$path")
                if [ -f "$file" ] && [ "$(sha1sum "$file" | cut -d' ' -f1)" = "$sha" ]; then
                    continue
                fi
                say "spark: downloading $MAVEN/$path"
                rm -f "$file.part"
                curl -fsSL --retry 3 --connect-timeout 30 -o "$file.part" "$MAVEN/$path" ||
                    die "spark: download of $MAVEN/$path failed"
                published=$(curl -fsSL --retry 3 --connect-timeout 30 "$MAVEN/$path.sha1") ||
                    die "spark: download of $MAVEN/$path.sha1 failed"
                published=${published%% *}
                got=$(sha1sum "$file.part" | cut -d' ' -f1)
                if [ "$got" != "$published" ] || [ "$got" != "$sha" ]; then
                    rm -f "$file.part"
                    die "spark: $path has SHA-1 $got; Maven Central publishes $published, pinned $sha"
                fi
                mv "$file.part" "$file"
            done
            printf '%s' "$want" >"$stamp.tmp"
            mv "$stamp.tmp" "$stamp"
        fi
        exec 8>&-
    fi
    for entry in "${TF_SPARK_JARS[@]}"; do
        list+="${list:+,}$dir/$(basename "${entry%% *}")"
    done
    say "spark: jars ready in $dir"
    printf '%s\n' "$list"
}

venv() {
    # Debian's interpreter, so the venv does not depend on a per-user Python.
    local base=/usr/bin/python3 key venv stamp
    [ -x "$base" ] || base=$(command -v python3)
    command -v java >/dev/null || die "spark: no java on PATH (tests/env/deps.sh installs openjdk-17-jre-headless)"
    key=$({
        printf '%s\n' "${TF_SPARK_PINS[@]}" "${TF_SPARK_BUILD_PINS[@]}"
        "$base" -c 'import platform, sys; print(sys.version, platform.machine())'
    } | sha256sum | cut -c1-16)
    venv=$cache/spark-venv-$key
    stamp=$venv/.tickflow-pins
    venv_ready() { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; }
    if ! venv_ready; then
        mkdir -p "$cache"
        exec 8>"$venv.lock"
        flock -w 900 8 || die "spark: timed out waiting for $venv.lock"
        if ! venv_ready; then
            # A half-made venv (an interrupted install) is made again from nothing.
            rm -rf "$venv"
            say "spark: creating $venv with $base"
            "$base" -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed? tests/env/deps.sh)"
            "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
                "${TF_SPARK_BUILD_PINS[@]}" >&2 || die "spark: pip install of ${TF_SPARK_BUILD_PINS[*]} failed"
            say "spark: installing ${TF_SPARK_PINS[*]} (pyspark is a 456 MB source archive; minutes when not cached)"
            "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation --use-pep517 --no-cache-dir \
                "${TF_SPARK_PINS[@]}" >&2 || die "spark: pip install of ${TF_SPARK_PINS[*]} failed"
            "$venv/bin/python" -m pip check --disable-pip-version-check >&2 ||
                die "spark: the pinned packages do not fit together (pip check)"
            "$venv/bin/python" -c 'import pyspark, py4j' || die "spark: pyspark or py4j does not import"
            printf '%s' "$key" >"$stamp.tmp"
            mv "$stamp.tmp" "$stamp"
        fi
        exec 8>&-
    fi
    say "spark: $venv ready"
    printf '%s\n' "$venv/bin/python"
}

case ${1:-venv} in
venv) venv ;;
jars) jars ;;
*) die "usage: tests/env/spark.sh [jars]" ;;
esac
