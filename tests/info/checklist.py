"""Counted checks for the Python tests of tests/info and tests/install:
every failed check is printed at once, the run ends with a count."""


class Checklist:
    def __init__(self):
        self.failures = []
        self.count = 0

    def __call__(self, ok, what):
        """Records one check; prints what when it failed."""
        self.count += 1
        if not ok:
            self.failures.append(what)
            print("FAIL:", what)

    def finish(self):
        """The exit status of the test: 1 when a check failed."""
        if self.failures:
            print("%d failures" % len(self.failures))
            return 1
        print("ok: %d checks" % self.count)
        return 0
