#!/usr/bin/env bash
# System packages the tests and benchmarks use, installed from Debian when missing:
#   python3-numpy  — the export test reads embeddings.npy with numpy.load
#   python3-sklearn — `npm run bench` compares against scikit-learn (only with --bench)
#   dataset-fashion-mnist — `npm run bench:images` (only with --bench)
#   sonic-pi-samples — `npm run bench:audio` tags its instrument samples (only with --bench)
#   radosgw ceph-mon ceph-osd — the real S3 server for the store contract suite
#   espeak-ng, sox — the audio tests synthesize spoken words and convert them (WAV, FLAC, MP3, Ogg)
#   lame — test/audio-decode.test.ts makes MP3s with a Xing/Info length tag and an ID3v2 tag (sox writes neither)
#   wrk, python3-fastapi, uvicorn — `npm run bench:serve` loads the server with wrk and measures the
#     FastAPI anchor next to it (only with --serve, which also brings python3-sklearn)
#   chromium — test/docs-browser.test.ts renders /docs in it, test/console-browser.test.ts the web console (driven by playwright-core)
# (scripts/radosgw.sh installs Ceph itself too; doing it here shares one `apt-get update`.)
set -euo pipefail

packages=(python3-numpy radosgw ceph-mon ceph-osd chromium espeak-ng sox libsox-fmt-all lame)
[[ "${1:-}" == "--bench" ]] && packages+=(python3-sklearn dataset-fashion-mnist sonic-pi-samples)
[[ "${1:-}" == "--serve" ]] && packages+=(python3-sklearn wrk python3-fastapi uvicorn)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "system-deps: missing ${missing[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -qq -o DPkg::Lock::Timeout=300 update
apt-get -qq -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >/dev/null
