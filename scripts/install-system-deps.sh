#!/usr/bin/env bash
# System packages the test suite uses beyond Python: Debian's chromium (page
# tests drive it headless through playwright, which never downloads a browser),
# a CJK font so charts can draw Chinese, and an emoji font for drafts on the
# page. Safe to run repeatedly; without root or apt it says what it could not
# do and the affected tests skip with that reason.
set -u
want=()
command -v chromium >/dev/null 2>&1 || want+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || want+=(fonts-wqy-microhei)
# Drafts carry emoji (👍, ～); without a colour emoji font the page screenshots show boxes.
fc-list 2>/dev/null | grep -qi emoji || want+=(fonts-noto-color-emoji)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: cannot install ${want[*]} (needs root and apt-get); browser/chart tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1 \
  || echo "install-system-deps: apt-get install ${want[*]} failed; browser/chart tests will skip" >&2
exit 0
