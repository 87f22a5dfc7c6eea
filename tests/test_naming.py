"""Names and tags round-trip: gc and status find runs from Vultr alone."""

from launcher.naming import instance_tags, parse_tags, reusable_volume_label, volume_label


def test_instance_tags_round_trip():
    tags = instance_tags("diffusion-20261129-091500", "diffusion", 1_795_000_000.9)
    assert tags == ("launcher", "run:diffusion-20261129-091500", "stage:diffusion",
                    "expires:1795000000")
    parsed = parse_tags(tags)
    assert (parsed.run_id, parsed.stage, parsed.expires_epoch) == (
        "diffusion-20261129-091500", "diffusion", 1_795_000_000)


def test_foreign_or_odd_tags():
    assert parse_tags(["run:x", "web"]).run_id == ""  # no "launcher" tag: not ours
    assert parse_tags(["launcher", "run:r-1", "expires:soon"]).expires_epoch is None


def test_volume_labels():
    assert volume_label("smoke-1") == "smoke-1-cache"
    assert reusable_volume_label("diffusion") == "launcher-cache-diffusion"
