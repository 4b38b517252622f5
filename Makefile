# make demo: everything set up, then the demo.  make test: everything set up, then every test.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

.PHONY: demo test test-fast bench image doctor docker cleanup clean

$(VENV)/.installed: setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check pytest
	touch $@

docker:  ## a Docker Engine that answers (installs and starts one on our fresh machines)
	@scripts/ensure-docker

image: docker  ## the sandbox image, built if missing (offline from Debian where no registry answers)
	$(PYTHON) -m safecode image

demo: image
	$(PYTHON) -m safecode doctor
	$(PYTHON) -m safecode run -c 'print("Hello from the sandbox:", 2 + 2)'

test: $(VENV)/.installed image
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
