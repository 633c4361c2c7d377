#!/usr/bin/env bash
# Regenerates the small speech clips under tests/data/speech with espeak-ng (Debian: apt-get install espeak-ng sox).
# The clips are committed so that tests run without espeak-ng; this script documents how they were made.
set -euo pipefail
out="$(dirname "$0")/../tests/data/speech"
mkdir -p "$out"
say() { # name voice speed pitch text
  espeak-ng -v "$2" -s "$3" -p "$4" -w "$out/$1.raw.wav" "$5"
  sox "$out/$1.raw.wav" -r 16000 -b 16 -c 1 "$out/$1.wav"
  rm "$out/$1.raw.wav"
}
say en_us_m  en-us        150 50 "The quick brown fox jumps over the lazy dog near the river bank."
say en_gb_f  en-gb+f3     140 60 "Please call Stella and ask her to bring these things with her from the store."
say en_sc_m  en-gb-scotland 170 40 "A rainbow is a division of white light into many beautiful colors."
