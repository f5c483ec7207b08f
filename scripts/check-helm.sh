#!/usr/bin/env bash
# Lints, renders and validates the Helm chart offline. Installs its Python tools (pinned) into a
# virtualenv under target/ the first time; needs python3 with venv (apt-installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/helm-venv
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "check-helm.sh: installing python3-venv with apt"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, yaml' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0' 'PyYAML==6.0.3'
fi
"$venv/bin/python" scripts/check_helm.py
