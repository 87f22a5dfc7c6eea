"""Fake credentials used across the suite. No test output may ever contain one of them."""

FAKE_VULTR_KEY = "FAKEKEY-vultr-do-not-print-7f3a9c1e5b"
EMULATOR_TEST_KEY = "emu-test-key-do-not-print-4b1d"
EMULATOR_CLI_KEY = "cli-test-key-never-printed-91c2"
FAKE_B2_KEY_ID = "FAKEB2ID-do-not-print-0042aa"
FAKE_B2_APP_KEY = "FAKEB2APPKEY-do-not-print-K005xyz9"
FAKE_WANDB_KEY = "FAKEWANDB-do-not-print-3e8d0c7b21a4"
# The instance's own key (VULTR_SELF_DESTRUCT_KEY): one the emulator accepts from anywhere,
# one it knows but only from another address, one it does not know at all.
FAKE_SELF_DESTRUCT_KEY = "FAKESELFDESTRUCT-do-not-print-5a91c0"
FAKE_FENCED_KEY = "FAKEFENCED-do-not-print-allowlist-77e2"
FAKE_UNKNOWN_KEY = "FAKEUNKNOWN-do-not-print-revoked-1b3f"
FAKE_VAST_KEY = "FAKEVAST-do-not-print-c0ffee9a41"
FAKE_CONTAINER_KEY = "FAKEVASTCONTAINER-do-not-print-9d4e21"  # a Vast instance's own key

ALL_FAKE_KEYS = (FAKE_VULTR_KEY, EMULATOR_TEST_KEY, EMULATOR_CLI_KEY, FAKE_B2_KEY_ID,
                 FAKE_B2_APP_KEY, FAKE_WANDB_KEY, FAKE_SELF_DESTRUCT_KEY, FAKE_FENCED_KEY,
                 FAKE_UNKNOWN_KEY, FAKE_VAST_KEY, FAKE_CONTAINER_KEY)
