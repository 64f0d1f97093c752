#!/usr/bin/env bash
# Download, on a machine with PyPI access, the wheels flowevo needs that the GPU machine's image lacks
# (Python 3.12, x86-64; the image has torch, torchdiffeq, scipy, typer, rich, scikit-image, pandas ...).
# They land in .whl/ at the repository root (ignored by git: add `/.whl/` to .git/info/exclude);
# benchmarks/gpu/check.sh installs them there. Pass the `.whl` folder in the device run's `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-common-dir)/info/exclude"
PY=${PY:-python3}
WHEELS=(
  pymoo==0.6.2 moocore==0.3.2 cffi==2.0.0 pycparser==2.23 platformdirs==4.5.0 autograd==1.9.1
  alive-progress==3.3.0 about-time==4.2.1 graphemeu==0.7.2 dill==0.4.1 Deprecated==1.3.1 cma==4.5.0
  mlxtend==0.25.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
mkdir -p .whl
for w in "${WHEELS[@]}"; do
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$w"
done
ls -la .whl && du -sh .whl
