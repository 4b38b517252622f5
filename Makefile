# make demo: everything set up, then the demo.  make test: everything set up, then every test.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

.PHONY: demo test test-fast bench image doctor docker browser cleanup clean

$(VENV)/.installed: setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check pytest
	touch $@

docker:  ## a Docker Engine that answers (installs and starts one on our fresh machines)
	@scripts/ensure-docker

image: docker  ## the sandbox image, built if missing (offline from Debian where no registry answers)
	$(PYTHON) -m safecode image

browser:  ## headless Chromium for the page's tests (installed from Debian when we are root)
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null)

demo: image  ## the web example on http://127.0.0.1:8000
	$(PYTHON) examples/web/server.py --port $(or $(PORT),8000)

test: $(VENV)/.installed browser  ## without Docker (and not under CI=true) the Docker tests are skipped, not failed
	@$(MAKE) --no-print-directory image || \
	  { [ "$$CI" != true ] && echo "make test: no Docker Engine here: its tests will be skipped" >&2; }
	$(VPY) -m pytest

test-fast: $(VENV)/.installed  ## only the tests that need no Docker
	$(VPY) -m pytest -m pure

bench: image
	$(PYTHON) scripts/bench.py

doctor: image
	$(PYTHON) -m safecode doctor

cleanup:
	$(PYTHON) -m safecode cleanup

clean:
	rm -rf $(VENV) .pytest_cache
