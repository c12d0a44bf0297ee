import pytest

# Shared fixture modules, loaded as plugins by the test modules that import from them too:
# rewrite their asserts from the first import on.
pytest.register_assert_rewrite("tests.fake_openai", "tests.captioner_fixtures")
