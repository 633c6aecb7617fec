"""The typed configuration: defaults need no file; bad files are named with the field at fault."""

from __future__ import annotations

import pytest

from pipelines.config import ConfigError, LeadmatchConfig, load_config


def test_no_file_means_defaults():
    assert load_config(None) == LeadmatchConfig()


def test_a_partial_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recommend:\n  sla_days: 5\nfeatures:\n  conversion_window_days: 60\n")
    config = load_config(path)
    assert config.recommend.sla_days == 5
    assert config.features.conversion_window_days == 60
    assert config.model == LeadmatchConfig().model


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recommend:\n  sla_days: -1\n", r"recommend\.sla_days: Input should be greater than 0"),
        ("recommend:\n  sla_dayz: 2\n", r"recommend\.sla_dayz: Extra inputs are not permitted"),
        ("- a\n- b\n", "must be a mapping of sections"),
        ("recommend: [\n", "not valid YAML"),
    ],
)
def test_bad_config_files_are_explained(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "none.yaml")


def test_the_digest_depends_on_the_values_only(tmp_path):
    default = LeadmatchConfig()
    # A file that writes defaults out loud is the same configuration as one that leaves them out.
    silent = load_config(_write(tmp_path / "a.yaml", "{}\n"))
    loud = load_config(
        _write(
            tmp_path / "b.yaml",
            f"recommend:\n  sla_days: {default.recommend.sla_days}\nseed: {default.seed}\n",
        )
    )
    assert loud.digest() == silent.digest()
    assert len(silent.digest()) == 12
    changed = [
        silent.model_copy(update={"seed": default.seed + 1}),
        silent.model_copy(
            update={"matching": default.matching.model_copy(update={"objective": "expected_value"})}
        ),
        load_config(_write(tmp_path / "c.yaml", "recommend:\n  sla_days: 9\n")),
    ]
    digests = {c.digest() for c in changed}
    assert len(digests) == 3 and silent.digest() not in digests


def _write(path, text):
    path.write_text(text)
    return path
