"""softmaxkit.integrations.transformers: a patched causal LM matches its unpatched self.

Tiny randomly initialised models (no downloads), float64 unless said
otherwise. The oracle is the unpatched model's own float64 logits with a dense
float64 cross-entropy over the shifted labels; the unpatched model's own
loss (transformers computes it in float32) is checked too.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional

from softmaxkit.integrations import transformers as sk_hf  # noqa: E402

VOCAB = 160
SEQ = 12
COMMON = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    initializer_range=0.2,  # logits of order 1, so the softcap and every term matter
)  # fmt: skip

# class name -> (config class, config overrides); a small final softcap makes the cap matter
CASES = {
    "LlamaForCausalLM": ("LlamaConfig", {}),
    "MistralForCausalLM": ("MistralConfig", {"sliding_window": None}),
    "Qwen2ForCausalLM": ("Qwen2Config", {}),
    "Qwen3ForCausalLM": ("Qwen3Config", {"head_dim": 8}),
    "GemmaForCausalLM": ("GemmaConfig", {"head_dim": 8}),
    "Gemma2ForCausalLM": ("Gemma2Config", {"head_dim": 8, "final_logit_softcapping": 0.7, "query_pre_attn_scalar": 8}),
    "Gemma3ForCausalLM": ("Gemma3TextConfig", {"head_dim": 8, "final_logit_softcapping": 0.7, "query_pre_attn_scalar": 8}),
    "GraniteForCausalLM": ("GraniteConfig", {"logits_scaling": 0.25}),
    "CohereForCausalLM": ("CohereConfig", {"logit_scale": 3.0}),
}


def build(name, dtype=torch.float64, seed=0, **overrides):
    config_name, defaults = CASES[name]
    if not hasattr(transformers, name):  # e.g. Qwen3 needs transformers >= 4.51
        pytest.skip(f"transformers {transformers.__version__} has no {name}")
    config = getattr(transformers, config_name)(**{**COMMON, **defaults, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, name)(config).to(dtype)
    model.train()
    return model


def pair(name, **kwargs):
    """(unpatched, patched) with the same weights."""
    reference = build(name, **kwargs)
    return reference, sk_hf.apply(copy.deepcopy(reference))


def batch(seed=1, batch_size=3, seq=SEQ, pad_rows=(1, 2), left=False):
    """Padded batch: row r in pad_rows ends (or, ``left``, starts) in pad tokens
    (mask 0, label -100), and one row also has a masked prompt (-100 labels with attention)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch_size, seq), generator=g)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    for k, r in enumerate(pad_rows):
        n_pad = 3 + 2 * k
        pads = slice(0, n_pad) if left else slice(seq - n_pad, seq)
        ids[r, pads] = 0
        mask[r, pads] = 0
        labels[r, pads] = -100
    labels[0, :4] = -100  # a prompt not trained on
    return {"input_ids": ids, "attention_mask": mask}, labels


def oracle_loss(model, inputs, labels, *, num_items_in_batch=None, shift_labels=None):
    """Dense float64 causal-LM loss on the unpatched model's logits."""
    logits = model(**inputs).logits  # (B, T, V), the family's softcap/scale applied
    assert logits is not None and logits.dtype == torch.float64
    if shift_labels is None:
        logits, shift_labels = logits[:, :-1], labels[:, 1:]
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), shift_labels.reshape(-1), ignore_index=-100, reduction=reduction)
    return loss if num_items_in_batch is None else loss / num_items_in_batch


def grads(model):
    out = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        out[name] = p.grad.detach().clone()
    model.zero_grad(set_to_none=True)
    return out


def assert_grads_close(got, want, rtol=1e-8, atol=1e-11):
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


def assert_matches_unpatched(reference, patched, inputs, labels, **loss_kwargs):
    """The patched loss and every gradient equal the float64 oracle's; the loss also equals the
    unpatched model's own (transformers: float32 CE on upcast logits). Returns the patched output."""
    want = oracle_loss(reference, inputs, labels, **loss_kwargs)
    want.backward()
    want_grads = grads(reference)
    out = patched(**inputs, labels=labels, **loss_kwargs)
    torch.testing.assert_close(out.loss, want, rtol=1e-10, atol=0)
    out.loss.backward()
    assert_grads_close(grads(patched), want_grads)
    own = reference(**inputs, labels=labels, **loss_kwargs).loss
    torch.testing.assert_close(out.loss.float(), own, rtol=2e-6, atol=0)
    return out


# --------------------------------------------------------------------------- loss and gradients


def test_every_family_has_a_case():
    assert set(sk_hf.FAMILIES) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_and_every_gradient_match_unpatched(name):
    reference, patched = pair(name)
    inputs, labels = batch()
    out = assert_matches_unpatched(reference, patched, inputs, labels)
    assert out.logits is None


@pytest.mark.parametrize("name", ["LlamaForCausalLM", "Qwen3ForCausalLM"])
def test_left_padded_batch(name):
    # (not Gemma-2: with this tiny random config its eager attention makes the left pad rows NaN,
    # patched and unpatched alike)
    reference, patched = pair(name)
    inputs, labels = batch(left=True)
    want = oracle_loss(reference, inputs, labels)
    want.backward()
    loss = patched(**inputs, labels=labels).loss
    torch.testing.assert_close(loss, want, rtol=1e-10, atol=0)
    loss.backward()
    assert_grads_close(grads(patched), grads(reference))


@pytest.mark.parametrize("name", ["Gemma2ForCausalLM", "Gemma3ForCausalLM"])
def test_softcap_is_applied(name):
    """The cap changes the loss here; the patched loss follows the configured cap,
    and a model whose config has no cap is not capped."""
    capped, patched = pair(name)
    inputs, labels = batch()
    uncapped = build(name, final_logit_softcapping=None)
    loss = patched(**inputs, labels=labels).loss.detach()
    uncapped_loss = oracle_loss(uncapped, inputs, labels).detach()
    assert abs(float(loss) - float(uncapped_loss)) > 1e-2
    torch.testing.assert_close(loss, oracle_loss(capped, inputs, labels), rtol=1e-10, atol=0)
    torch.testing.assert_close(sk_hf.apply(uncapped)(**inputs, labels=labels).loss, uncapped_loss, rtol=1e-10, atol=0)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_num_items_in_batch_is_sum_over_count(as_tensor):
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    n = 57  # e.g. the count over all micro-batches of an accumulation step
    assert_matches_unpatched(reference, patched, inputs, labels,
                             num_items_in_batch=torch.tensor(n) if as_tensor else n)


def test_gradient_accumulation_equals_the_full_batch():
    """Two micro-batches, each divided by the total target count, add up to the
    full batch's mean gradient, although the micro-batches have different counts."""
    _, patched = pair("Qwen2ForCausalLM")
    inputs, labels = batch(batch_size=4, pad_rows=(1, 2, 3))
    total = int((labels[:, 1:] != -100).sum())
    for part in (slice(0, 1), slice(1, 4)):
        micro = {k: v[part] for k, v in inputs.items()}
        patched(**micro, labels=labels[part], num_items_in_batch=torch.tensor(total)).loss.backward()
    accumulated = grads(patched)
    patched(**inputs, labels=labels).loss.backward()
    assert_grads_close(accumulated, grads(patched))


@pytest.mark.parametrize("name", ["LlamaForCausalLM", "GemmaForCausalLM"])
def test_tied_embeddings_get_both_gradients(name):
    reference, patched = pair(name, tie_word_embeddings=True)
    assert patched.lm_head.weight is patched.model.embed_tokens.weight
    inputs, labels = batch()
    oracle_loss(reference, inputs, labels).backward()
    want = grads(reference)
    patched(**inputs, labels=labels).loss.backward()
    got = grads(patched)
    assert_grads_close(got, want)
    # both uses count: the head's part alone is a different gradient
    head_only = copy.deepcopy(reference)
    hidden = head_only.model(**inputs).last_hidden_state.detach()
    logits = head_only.lm_head(hidden)[:, :-1]
    F.cross_entropy(logits.reshape(-1, VOCAB), labels[:, 1:].reshape(-1)).backward()
    assert not torch.allclose(head_only.lm_head.weight.grad, got["model.embed_tokens.weight"])


def test_precomputed_shift_labels():
    """Labels already aligned (one per position, as padding-free collators send):
    no second shift, and `labels` is then only the switch."""
    reference, patched = pair("Gemma2ForCausalLM")
    inputs, labels = batch()
    shift = F.pad(labels, (0, 1), value=-100)[:, 1:].contiguous()  # transformers .view()s it
    shift[2, 3] = -100
    assert_matches_unpatched(reference, patched, inputs, labels, shift_labels=shift)


def test_custom_ignore_index():
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    labels[labels == -100] = 7
    loss = patched(**inputs, labels=labels, ignore_index=7).loss
    own = reference(**inputs, labels=labels, ignore_index=7).loss
    torch.testing.assert_close(loss.float(), own, rtol=2e-6, atol=0)


def test_logits_to_keep():
    """Keeping the last K positions with full labels is an error in both (a clear
    one here); with shift_labels for those K positions both compute the loss."""
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    with pytest.raises(ValueError, match="logits_to_keep"):
        patched(**inputs, labels=labels, logits_to_keep=4)
    with pytest.raises(Exception):
        reference(**inputs, labels=labels, logits_to_keep=4)
    shift = labels[:, -3:]
    shift = F.pad(shift, (0, 1), value=-100).contiguous()  # positions T-4..T-1 predict T-3..T-1, and nothing
    loss = patched(**inputs, labels=labels, logits_to_keep=4, shift_labels=shift).loss
    own = reference(**inputs, labels=labels, logits_to_keep=4, shift_labels=shift).loss
    torch.testing.assert_close(loss.float(), own, rtol=2e-6, atol=0)
    # logits_to_keep=0 keeps everything: the default
    torch.testing.assert_close(
        patched(**inputs, labels=labels, logits_to_keep=0).loss, oracle_loss(reference, inputs, labels),
        rtol=1e-10, atol=0,
    )  # fmt: skip


def test_all_targets_ignored_gives_zero_not_nan():
    """softmaxkit's documented rule; transformers' mean of nothing is NaN."""
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    labels[:] = -100
    loss = patched(**inputs, labels=labels).loss
    assert float(loss.detach()) == 0.0
    assert torch.isnan(reference(**inputs, labels=labels).loss)


# --------------------------------------------------------------------------- return values


def test_without_labels_the_forward_is_unchanged():
    reference, patched = pair("Gemma2ForCausalLM")
    inputs, _ = batch()
    want, got = reference(**inputs), patched(**inputs)
    assert type(got) is type(want) and got.keys() == want.keys()
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=0)
    torch.testing.assert_close(reference(**inputs, logits_to_keep=1).logits, patched(**inputs, logits_to_keep=1).logits)


def test_eval_mode_keeps_logits_for_metrics():
    reference, patched = pair("Qwen2ForCausalLM")
    reference.eval(), patched.eval()
    inputs, labels = batch()
    want, got = reference(**inputs, labels=labels), patched(**inputs, labels=labels)
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=0)
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=0)


def test_training_outputs():
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    out = patched(**inputs, labels=labels, output_hidden_states=True)
    want = reference(**inputs, labels=labels, output_hidden_states=True)
    assert type(out) is type(want)
    assert out.logits is None and "logits" not in out.keys()
    assert len(out.hidden_states) == len(want.hidden_states)
    for a, b in zip(out.hidden_states, want.hidden_states):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # return_dict=False: a tuple whose first item is the loss, as transformers returns it,
    # and whose second is None where the logits were: to_tuple() drops None fields, so
    # outputs[1] used to be the cache, read as logits by code written for the unpatched model
    as_tuple = patched(**inputs, labels=labels, return_dict=False, output_hidden_states=True)
    want_tuple = reference(**inputs, labels=labels, return_dict=False, output_hidden_states=True)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(want_tuple)
    torch.testing.assert_close(as_tuple[0], out.loss, rtol=0, atol=0)
    assert as_tuple[1] is None
    assert [type(v) for v in as_tuple[2:]] == [type(v) for v in want_tuple[2:]]
    # labels passed positionally (forward(input_ids, attention_mask, position_ids, cache, inputs_embeds, labels))
    positional = patched(inputs["input_ids"], inputs["attention_mask"], None, None, None, labels)
    assert positional.logits is None
    torch.testing.assert_close(positional.loss, out.loss, rtol=0, atol=0)


def test_no_vocab_sized_tensor_is_made():
    """The point of it all: with labels in training, nothing of the logits' size
    (tokens x vocab) is allocated in the forward (checked on autograd's saved tensors)."""
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch(seq=40)  # 120 tokens: the logits are 3.75x the (V, D) weight
    n_logits = labels.numel() * VOCAB

    def biggest_saved(model):
        sizes = []

        def pack(t):
            sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(**inputs, labels=labels).loss
        return max(sizes)

    assert biggest_saved(reference) >= n_logits  # the check can see the logits
    assert biggest_saved(patched) < n_logits // 2


# --------------------------------------------------------------------------- apply itself


def test_apply_is_in_place_idempotent_and_keeps_the_state_dict():
    model = build("LlamaForCausalLM")
    keys = list(model.state_dict())
    assert not sk_hf.is_applied(model)
    assert sk_hf.apply(model) is model
    assert sk_hf.is_applied(model)
    forward = model.forward
    assert sk_hf.apply(model) is model and model.forward == forward
    assert list(model.state_dict()) == keys
    assert sk_hf.revert(model) is model and type(model) is transformers.LlamaForCausalLM
    assert not sk_hf.is_applied(model) and sk_hf.revert(model) is model
    inputs, labels = batch()
    assert model(**inputs, labels=labels).logits is not None
    sk_hf.apply(model)
    other = build("LlamaForCausalLM")  # the class is untouched
    assert not sk_hf.is_applied(other)
    inputs, labels = batch()
    assert other(**inputs, labels=labels).logits is not None


def test_deepcopy_of_a_patched_model_uses_its_own_weights():
    model = sk_hf.apply(build("LlamaForCausalLM"))
    clone = copy.deepcopy(model)
    assert sk_hf.is_applied(clone)
    with torch.no_grad():
        clone.lm_head.weight.mul_(2.0)
    inputs, labels = batch()
    assert float(clone(**inputs, labels=labels).loss.detach()) != float(model(**inputs, labels=labels).loss.detach())
    assert model.lm_head.weight.grad is None
    clone(**inputs, labels=labels).loss.backward()
    assert model.lm_head.weight.grad is None and clone.lm_head.weight.grad is not None


def test_pickle_and_data_parallel_replicas_stay_patched():
    import pickle

    model = sk_hf.apply(build("LlamaForCausalLM"))
    assert type(model).__name__ == "LlamaForCausalLM" and isinstance(model, transformers.LlamaForCausalLM)
    inputs, labels = batch()
    want = model(**inputs, labels=labels).loss.detach()
    loaded = pickle.loads(pickle.dumps(model))
    assert sk_hf.is_applied(loaded)
    out = loaded(**inputs, labels=labels)
    assert out.logits is None
    torch.testing.assert_close(out.loss.detach(), want, rtol=0, atol=0)
    # nn.DataParallel copies the instance's __dict__ into replicas: forward must bind to the replica
    replica = model._replicate_for_data_parallel()
    assert sk_hf.is_applied(replica) and replica.forward.__self__ is replica


def test_save_pretrained_round_trip(tmp_path):
    model = sk_hf.apply(build("Gemma2ForCausalLM", dtype=torch.float32))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["Gemma2ForCausalLM"]
    loaded = transformers.Gemma2ForCausalLM.from_pretrained(tmp_path)
    assert not sk_hf.is_applied(loaded)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_gradient_checkpointing():
    reference, patched = pair("Qwen2ForCausalLM")
    getattr(patched, "activation_checkpointing_enable", patched.gradient_checkpointing_enable)()
    inputs, labels = batch()
    oracle_loss(reference, inputs, labels).backward()
    patched(**inputs, labels=labels).loss.backward()
    assert_grads_close(grads(patched), grads(reference))


def test_signature_is_kept_for_the_trainer():
    import inspect

    model = sk_hf.apply(build("LlamaForCausalLM"))
    params = inspect.signature(model.forward).parameters
    assert {"input_ids", "attention_mask", "labels", "logits_to_keep"} <= set(params)
    assert any(p.kind is p.VAR_KEYWORD for p in params.values())


def test_refuses_unsupported_models():
    config = transformers.LlamaConfig(**COMMON)
    with pytest.raises(TypeError, match="LlamaForSequenceClassification"):
        sk_hf.apply(transformers.LlamaForSequenceClassification(config))
    with pytest.raises(TypeError, match="LlamaModel"):
        sk_hf.apply(transformers.LlamaModel(config))
    moe = transformers.MixtralConfig(**COMMON, num_local_experts=4, num_experts_per_tok=2)
    with pytest.raises(TypeError, match="MixtralForCausalLM"):  # its forward adds a router loss
        sk_hf.apply(transformers.MixtralForCausalLM(moe))
    with pytest.raises(TypeError, match="str"):
        sk_hf.apply("meta-llama/Llama-3.2-1B")


def test_refuses_a_replaced_loss_function_and_falls_back_after_apply():
    model = build("LlamaForCausalLM")
    model.loss_function = lambda logits, labels, vocab_size, **kw: logits.sum() * 0
    with pytest.raises(ValueError, match="loss_function"):
        sk_hf.apply(model)
    # replaced after apply: the original forward (with its logits) runs, never a silently different loss
    model = sk_hf.apply(build("LlamaForCausalLM"))
    model.loss_function = lambda logits, labels, vocab_size, **kw: logits.sum() * 0
    inputs, labels = batch()
    with pytest.warns(UserWarning, match="loss_function was replaced"):
        out = model(**inputs, labels=labels)
    assert out.logits is not None and float(out.loss.detach()) == 0.0


class _LoraLikeHead(torch.nn.Linear):
    """A head whose output is not F.linear(x, weight): the fused loss must not be used."""

    def __init__(self, base):
        super().__init__(base.in_features, base.out_features, bias=False, dtype=base.weight.dtype)
        self.weight = base.weight
        self.delta = torch.nn.Parameter(torch.full((base.out_features,), 0.5, dtype=base.weight.dtype))

    def forward(self, x):
        return super().forward(x) + self.delta


@pytest.mark.parametrize("change", ["lora_like_head", "forward_hook", "global_hook"])
def test_a_head_changed_after_apply_falls_back_to_the_original(change):
    """PEFT on lm_head, a hook that edits the logits, ZeRO-3's gather hooks: the fused
    loss would ignore them, so the original forward runs (with a warning)."""
    reference, patched = pair("LlamaForCausalLM")
    inputs, labels = batch()
    handles = []
    for model in (reference, patched):
        if change == "lora_like_head":
            model.lm_head = _LoraLikeHead(model.lm_head)
        elif change == "forward_hook":
            handles.append(model.lm_head.register_forward_hook(lambda mod, args, out: out * 2.0))
    if change == "global_hook":
        handles.append(torch.nn.modules.module.register_module_forward_hook(lambda mod, args, out: None))
    try:
        want = reference(**inputs, labels=labels).loss
        with pytest.warns(UserWarning, match="unfused"):
            got = patched(**inputs, labels=labels)
    finally:
        for handle in handles:
            handle.remove()
    assert got.logits is not None
    torch.testing.assert_close(got.loss, want, rtol=0, atol=0)
    with pytest.raises(TypeError, match="_LoraLikeHead"):
        model = build("LlamaForCausalLM")
        model.lm_head = _LoraLikeHead(model.lm_head)
        sk_hf.apply(model)


def test_refuses_an_already_wrapped_forward():
    model = build("LlamaForCausalLM")
    model.forward = model.forward  # what accelerate's wrappers leave behind: an instance attribute
    with pytest.raises(ValueError, match="before wrapping"):
        sk_hf.apply(model)


def test_bfloat16_model_close_to_unpatched():
    reference, patched = pair("LlamaForCausalLM", dtype=torch.bfloat16)
    inputs, labels = batch()
    own = reference(**inputs, labels=labels).loss
    loss = patched(**inputs, labels=labels).loss
    assert loss.dtype == torch.float32 == own.dtype
    torch.testing.assert_close(loss, own, rtol=1e-2, atol=0)
    own.backward(), loss.backward()
    for (name, a), b in zip(reference.named_parameters(), patched.parameters()):
        rel = float((a.grad.float() - b.grad.float()).norm() / a.grad.float().norm())
        assert rel < 0.05, name


def test_cpu_autocast_close_to_unpatched():
    """Trainer(bf16=True) on CPU runs the step under autocast; the fused loss then
    runs at the (float32) weights' precision, the unpatched one in bfloat16."""
    reference, patched = pair("LlamaForCausalLM", dtype=torch.float32)
    inputs, labels = batch()
    losses = []
    for model in (reference, patched):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**inputs, labels=labels).loss
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[1], losses[0], rtol=2e-3, atol=0)
    for (name, a), b in zip(reference.named_parameters(), patched.parameters()):
        assert float((a.grad - b.grad).norm() / a.grad.norm()) < 0.05, name


def test_import_softmaxkit_integrations_is_light():
    probe = (
        "import json, sys, softmaxkit, softmaxkit.integrations; "
        "print(json.dumps([m for m in ('torch', 'transformers') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# --------------------------------------------------------------------------- Trainer


def _trainer_run(model, tmp_path, tag):
    """Two SGD steps of two accumulated micro-batches of unequal target counts."""
    inputs, labels = batch(batch_size=8, pad_rows=(1, 2, 5, 6), seed=3)
    rows = [
        {"input_ids": inputs["input_ids"][i], "attention_mask": inputs["attention_mask"][i], "labels": labels[i]}
        for i in range(len(labels))
    ]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / tag), max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=2,
        learning_rate=0.5, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0, data_seed=0,
        dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry], model


def test_trainer_steps_match_unpatched(tmp_path):
    reference = build("LlamaForCausalLM", dtype=torch.float32)
    patched = sk_hf.apply(copy.deepcopy(reference))
    want_losses, reference = _trainer_run(reference, tmp_path, "unpatched")
    got_losses, patched = _trainer_run(patched, tmp_path, "patched")
    assert len(got_losses) == len(want_losses) == 2
    torch.testing.assert_close(torch.tensor(got_losses), torch.tensor(want_losses), rtol=1e-5, atol=0)
    # the weights moved (lr 0.5) and moved alike: the gradients agreed step by step
    moved = 0.0
    for (name, a), b in zip(reference.named_parameters(), patched.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
    for a, b in zip(build("LlamaForCausalLM", dtype=torch.float32).parameters(), patched.parameters()):
        moved = max(moved, float((a - b).detach().abs().max()))
    assert moved > 1e-3


def test_bfloat16_num_items_gradient_scale():
    """Same bfloat16 model, same hidden states: only the head and loss differ, so the
    patched head gradient should have the unpatched one's scale (to bfloat16 noise)."""
    reference, patched = pair("LlamaForCausalLM", dtype=torch.bfloat16)
    inputs, labels = batch()
    n = 60  # 1/60 is among the worst-rounded reciprocals in bfloat16 (2**-8 relative is the bound)
    head_grads = []
    for model in (reference, patched):
        model(**inputs, labels=labels, num_items_in_batch=n).loss.backward()
        head_grads.append(model.lm_head.weight.grad.double())
    want, got = head_grads
    scale = float((got * want).sum() / (want * want).sum())
    assert abs(scale - 1.0) < 1e-3, scale


def test_a_forward_that_is_not_transformers_own_is_refused(monkeypatch):
    """The family is found by class name: a same-named class whose forward adds a loss term (a
    remote-code copy, or a class-level patch) was fused with plain cross-entropy, dropping the term
    (audit: 6.89 for 11.67, no word). Only transformers' own forward runs under a shipped family."""
    base = getattr(transformers, "LlamaForCausalLM")

    def forward_with_z_loss(self, *args, labels=None, **kwargs):
        out = base.forward(self, *args, labels=labels, **kwargs)
        if labels is not None:
            out.loss = out.loss + 0.1 * out.logits.logsumexp(-1).pow(2).mean()
        return out

    remote = type("LlamaForCausalLM", (base,), {"forward": forward_with_z_loss,
                                                 "__module__": "transformers_modules.org.modeling_llama"})
    model = build("LlamaForCausalLM")
    model.__class__ = remote
    with pytest.raises(TypeError, match=r"LlamaForCausalLM\.forward comes from .*not from transformers' own"):
        sk_hf.apply(model)
    # A class-level patch of the real class, as some training libraries do.
    monkeypatch.setattr(base, "forward", forward_with_z_loss)
    with pytest.raises(TypeError, match="not from transformers' own"):
        sk_hf.apply(build("LlamaForCausalLM"))
    monkeypatch.undo()
    # A same-named subclass that keeps transformers' forward, and a family the user registers, are taken.
    model = build("LlamaForCausalLM")
    model.__class__ = type("LlamaForCausalLM", (base,), {"__module__": "my_project.models"})
    assert sk_hf.is_applied(sk_hf.apply(model))
    monkeypatch.setitem(sk_hf.FAMILIES, "LlamaForCausalLM", sk_hf.Family())
    model = build("LlamaForCausalLM")
    model.__class__ = remote
    assert sk_hf.is_applied(sk_hf.apply(model))


def test_train_mode_without_a_gradient_returns_the_logits():
    """Audit BY: a validation loop under no_grad that forgot model.eval() got out.logits None (fused path)."""
    model = sk_hf.apply(build("LlamaForCausalLM"))
    reference = build("LlamaForCausalLM")
    reference.load_state_dict(model.state_dict())
    model.train()
    reference.train()
    inputs, labels = batch()
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            out, want = model(**inputs, labels=labels), reference(**inputs, labels=labels)
        assert out.logits is not None
        torch.testing.assert_close(out.logits, want.logits, rtol=0, atol=0)
        torch.testing.assert_close(out.loss, want.loss, rtol=0, atol=0)
    assert model(**inputs, labels=labels).logits is None  # with a gradient: fused, as before
