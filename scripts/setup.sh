#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian 12 with Node 20: system packages, npm packages, the native
# addon and the TypeScript build. Fast when everything is already in place.
#
# Environment:
#   LIBTORCH=/path/to/libtorch   build against another libtorch (e.g. a CUDA one, or the one inside a
#                                PyTorch install: python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'/../..)
#   Torch_DIR=/path/to/share/cmake/Torch   same, pointing at TorchConfig.cmake's folder
#   LESIONSEG_SKIP_APT=1         never call apt-get (you installed the dependencies yourself)
#   LESIONSEG_WITH_SLURM=1       also install slurm-wlm (the Slurm tests, scripts/slurm-local.sh); `npm test` sets it
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# --- 1. system packages --------------------------------------------------------------------------
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if [ -z "${LIBTORCH:-}" ] && [ -z "${Torch_DIR:-}" ]; then
  have_pkg libtorch-dev || missing+=(libtorch-dev)
fi
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
# predict and import convert DICOM series with Debian's dcm2niix.
command -v dcm2niix >/dev/null 2>&1 || missing+=(dcm2niix)
# Compressed series (JPEG, JPEG-LS, RLE, big endian, deflate) are decoded first by dcmtk, JPEG 2000 by GDCM.
command -v dcmdjpeg >/dev/null 2>&1 || missing+=(dcmtk)
command -v gdcmconv >/dev/null 2>&1 || missing+=(libgdcm-tools)
# Data-parallel training (train/pretrain --nproc, srun): the gloo headers c10d's ProcessGroupGloo needs.
have_pkg libgloo-dev || [ -f /usr/include/gloo/config.h ] || missing+=(libgloo-dev)
# The reference tests' tools: the report test renders the HTML report in headless Chromium, the export
# tests load exported models in Debian's PyTorch, the DICOM tests use pydicom, `info` is compared with
# nibabel. Installed when set-up runs as root; elsewhere those tests skip, except under CI=true, where
# scripts/test.sh fails a run with any skipped test.
optional=()
[ -x /usr/bin/chromium ] || optional+=(chromium)
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || optional+=(python3-torch)
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || optional+=(python3-numpy)
# nnU-Net postprocessing fixtures (src/infer/postprocessing.test.ts) are computed with scipy.ndimage.label.
/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1 || optional+=(python3-scipy)
# The DICOM tests write CT series and read DICOM SEGs back with pydicom.
/usr/bin/python3 -c 'import pydicom' >/dev/null 2>&1 || optional+=(python3-pydicom)
/usr/bin/python3 -c 'import nibabel' >/dev/null 2>&1 || optional+=(python3-nibabel)
# The SEG validation test (src/io/dicom/seg-validate.test.ts) runs David Clunie's dciodvfy (dicom3tools)
# and PixelMed's DicomInstanceValidator (libpixelmed-java, on a headless Java runtime).
command -v dciodvfy >/dev/null 2>&1 || optional+=(dicom3tools)
[ -f /usr/share/java/pixelmed.jar ] || optional+=(libpixelmed-java)
command -v java >/dev/null 2>&1 || optional+=(default-jre-headless)
# The DICOMweb tests (src/io/dicom/dicomweb/client.test.ts) start a real Orthanc with its DICOMweb plugin.
[ -x /usr/sbin/Orthanc ] || optional+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || optional+=(orthanc-dicomweb)
# Slurm only for its tests or when asked: the data-parallel srun test and the slurm executor's.
if [ -n "${LESIONSEG_WITH_SLURM:-}" ]; then command -v srun >/dev/null 2>&1 || optional+=(slurm-wlm); fi
if [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && [ -z "${LESIONSEG_SKIP_APT:-}" ]; then
    missing+=("${optional[@]}")
  else
    log "optional: ${optional[*]} is not installed (the reference tests that need them will be skipped; under CI=true a skip fails the run)"
  fi
elif [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  missing+=("${optional[@]}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${LESIONSEG_SKIP_APT:-}" ]; then
    log "missing: ${missing[*]} (LESIONSEG_SKIP_APT is set, not installing)"; exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    log "missing system packages: ${missing[*]}"
    log "install them as root (apt-get install -y ${missing[*]}), or set LIBTORCH=/path/to/libtorch"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. npm packages -----------------------------------------------------------------------------
lock_hash=$(sha256sum package-lock.json package.json | sha256sum | cut -c1-16)
if [ ! -f node_modules/.lesionseg-stamp ] || [ "$(cat node_modules/.lesionseg-stamp)" != "$lock_hash" ]; then
  log "npm ci"
  # .npmrc sets ignore-scripts; the env var keeps onnxruntime-node's download off even if a user's
  # own npm config turns scripts back on.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_hash" > node_modules/.lesionseg-stamp
fi

# --- 3. native addon + TypeScript -----------------------------------------------------------------
bash scripts/build.sh
