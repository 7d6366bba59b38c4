set -eu
umask 022
if ! py=$(command -v python3); then echo "gghealth install: no python3 on PATH; install Python 3.10 to 3.13 and python3-venv (apt install python3 python3-venv)" >&2; exit 1; fi
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$ver" in
  {PYTHON_CASES}) ;;
  *) echo "gghealth install: $py is Python $ver; this package bundles wheels for CPython {PYTHON_RANGE} on {ARCH} only (README, Deploy)" >&2; exit 1 ;;
esac
if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then echo "gghealth install: $py cannot create a virtual environment: install python3-venv" >&2; exit 1; fi
prefix="{INSTALL_ROOT}"
venv="$prefix/{COMPONENT_VERSION}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "{artifacts:path}/{ARTIFACT}" "$stage/a.zip"
if ! echo "{ARTIFACT_SHA256}  $stage/a.zip" | sha256sum -c --status -; then echo "gghealth install: {ARTIFACT} does not have the SHA-256 this recipe pins; redeploy" >&2; exit 1; fi
"$py" -m zipfile -e "$stage/a.zip" "$stage/x"
mkdir -p "$prefix"
chown 0:0 "$prefix"
chmod 755 "$prefix"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --only-binary=:all: --require-hashes --find-links "$stage/x" --find-links "$stage/x/wheels" -r "$stage/x/requirements.txt"
for old in "$prefix"/*; do
  [ "$old" = "$venv" ] || rm -rf "$old"
done
