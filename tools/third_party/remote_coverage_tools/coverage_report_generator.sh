#!/bin/sh
echo "coverage reports are not available in otgen's offline build" >&2
exit 1
