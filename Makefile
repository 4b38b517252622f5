# make demo: everything set up, then the demo.  make test: everything set up, then every test.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PACKAGE := $(shell find safecode -name "*.py" -o -name "*.json") safecode/py.typed setup.cfg pyproject.toml

.PHONY: demo test test-fast test-versions bench image doctor docker engines browser cleanup clean

# The tests run against safecode as pip installs it, so a file missing from the package fails them.
$(VENV)/.installed: $(PACKAGE)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check pytest mypy wheel  # wheel: tests build wheels
	rm -rf build  # setuptools keeps old modules there, and would install them again
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall .
	touch $@

docker:  ## a Docker Engine that answers, with gVisor's runsc registered (installs and starts one on our fresh machines)
	@scripts/ensure-docker

engines:  ## podman and sshd, for the tests that run the sandbox on them (installed from Debian when we are root)
	@scripts/ensure-engines

image: docker  ## the sandbox image, built if missing (offline from Debian where no registry answers)
	$(PYTHON) -m safecode image

browser:  ## headless Chromium for the page's tests (installed from Debian when we are root)
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null)

SCIENTIFIC := safecode-sandbox:3.13-scientific
demo: image  ## the web example on http://127.0.0.1:8000, with scratch space, and the scientific image if it is built
	$(PYTHON) examples/web/server.py --port $(or $(PORT),8000) --scratch 16m \
	  $$(docker image inspect $(SCIENTIFIC) >/dev/null 2>&1 && echo --image $(SCIENTIFIC) --timeout 30)

# From tests/, so that the checkout's safecode/ is not on sys.path: the installed copy is the one tested. The other
# Pythons come after the suite, not beside it: on two cores their pip installs would skew its timing tests.
test: $(VENV)/.installed browser engines  ## without Docker (and not under CI=true) the Docker tests are skipped, not failed
	@$(MAKE) --no-print-directory image || \
	  { [ "$$CI" != true ] && echo "make test: no Docker Engine here: its tests will be skipped" >&2; }
	cd tests && SAFECODE_TEST_INSTALLED=1 ../$(VPY) -m pytest --durations=20  # the slowest: the 12-minute budget
	@$(MAKE) --no-print-directory test-versions

test-fast: $(VENV)/.installed  ## only the tests that need no Docker
	cd tests && SAFECODE_TEST_INSTALLED=1 ../$(VPY) -m pytest -m pure

test-versions:  ## every Python version setup.cfg claims: pip install, the pure tests, a Docker smoke run
	scripts/test-versions

bench: image  ## run alone: on two cores anything beside it skews it
	$(PYTHON) -m safecode image --image $(SCIENTIFIC)
	$(PYTHON) scripts/bench.py

doctor: image
	$(PYTHON) -m safecode doctor

cleanup:
	$(PYTHON) -m safecode cleanup

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
