"""Hugging Face ``transformers``: one call gives a causal LM the fused linear + cross-entropy loss.

>>> from softmaxkit.integrations.transformers import apply
>>> model = apply(AutoModelForCausalLM.from_pretrained(...))   # doctest: +SKIP
>>> model(input_ids, labels=input_ids).loss.backward()         # doctest: +SKIP

In training mode with ``labels``, the patched forward never forms the
``(tokens, vocab)`` logits: the final hidden states go straight into
:func:`softmaxkit.torch.linear_cross_entropy` with the output projection's
weight. At a 128k vocabulary those logits are the largest tensor of the step
(``4 * tokens * 128256`` bytes in float32, once more for their gradient, and
again for the float32 upcast of a bf16 model).

What the patched forward does, against the unpatched one:

======================  ===========================================================
call                    patched forward
======================  ===========================================================
no ``labels``           the original forward, unchanged (generation, inference)
``labels``, eval mode   the original forward, unchanged (logits for metrics)
``labels``, no grad     the original forward, unchanged: a validation loop under
                        ``torch.no_grad()`` that forgot ``model.eval()`` gets its
                        logits (it got ``None``, a ``TypeError`` at ``argmax``)
``labels``, train mode  the original forward with the logits replaced by the fused
                        loss; ``outputs.loss`` is the same loss, ``outputs.logits``
                        is ``None`` (as in Liger Kernel); every other field
                        (``hidden_states``, ``cache``, ...) as before; with
                        ``return_dict=False`` the tuple holds ``None`` where the
                        logits were, so every later item keeps its position
changed after apply     the original forward, with a ``UserWarning``: the
                        output embedding is no longer a plain ``nn.Linear`` (LoRA
                        on ``lm_head``, quantised, offloaded), has forward hooks
                        (they could edit the logits; ZeRO-3 gathers the weight in
                        one), or ``model.loss_function`` was replaced
======================  ===========================================================

The loss is transformers' ``ForCausalLMLoss``, term for term:

* labels are shifted left by one (``pad(labels, (0, 1), value=ignore_index)[..., 1:]``),
  unless a precomputed ``shift_labels`` is passed (padding-free collators and
  context parallelism pass one);
* targets equal to ``ignore_index`` (a forward kwarg, default -100) are skipped;
* ``reduction="mean"`` over the kept targets, or, when the Trainer passes
  ``num_items_in_batch`` (gradient accumulation), ``sum / num_items_in_batch``;
* the family's logit transform: Gemma-2/3's ``c * tanh(logits / c)`` with
  ``c = config.final_logit_softcapping``, Granite's ``logits / config.logits_scaling``,
  Cohere's ``logits * model.logit_scale`` (see :data:`FAMILIES`);
* the projection is ``model.get_output_embeddings()``; with tied embeddings
  its weight *is* the input embedding, so both uses add into one gradient.

``logits_to_keep`` slices the hidden states before the projection, as in the
original forward; the kept positions must then line up with the (shifted)
labels, exactly where the unpatched loss needs it (it reshapes both to one
row per target). If they do not, a ``ValueError`` says so instead of
torch's reshape error.

Differences from the unpatched model, all deliberate:

* ``outputs.logits`` is ``None`` when the fused path runs (that is the point);
  ``Trainer`` only reads ``outputs.loss`` in training. A ``compute_loss_func``
  or label smoothing makes the Trainer call the model without ``labels``, so
  those get the unpatched forward and their logits.
* If every target of a ``"mean"`` batch is ignored, the loss is 0.0 with zero
  gradient (softmaxkit's rule), where transformers gives NaN.
* float64 models get a float64 loss (transformers computes it in float32).
  16-bit models get a float32 loss, as in transformers
  (``linear_cross_entropy(..., loss_dtype=torch.float32)``): it is never
  rounded to 16 bits, and the backward's upstream ``1 / num_items_in_batch``
  reaches the fused gradients in float32.

How it works, and why this way: :func:`apply` moves the instance to a
subclass of its class (same name, made once per class) whose ``forward`` is
a wrapper; the class itself and other instances are untouched. A subclass
rather than a ``forward`` attribute on the instance, because
``nn.DataParallel`` replicas copy the instance's ``__dict__`` (an instance
method would stay bound to the original), and so that ``copy.deepcopy`` and
``pickle`` give back patched models (they rebuild from the importable class
and patch again). For a fused call the wrapper runs the model's *own* forward with ``labels=None`` while a
pre-hook on the output projection takes its input (the hidden states after
``logits_to_keep``) and hands the projection zero tokens instead. Everything
else the forward does (arguments, deprecations, caches, the decoder call)
stays transformers' code for that version, so nothing is copied per family;
a family only declares the logit transform that its forward applies after
the projection. Liger Kernel's ``apply_liger_kernel_to_*`` replace the
forward with a per-family copy instead.

Adding a family is one entry in :data:`FAMILIES`, keyed by the model class's
name, once its ``forward`` is checked to be ``lm_head`` -> (transform) ->
``self.loss_function(...)``, and a test case in
``tests/test_integration_transformers.py``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from softmaxkit.torch import linear_cross_entropy

try:
    from transformers.loss.loss_utils import ForCausalLMLoss
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "softmaxkit.integrations.transformers needs the `transformers` package (pip install transformers)"
    ) from exc

__all__ = ["apply", "revert", "is_applied", "Family", "FAMILIES"]


@dataclass(frozen=True)
class Family:
    """How a causal-LM class turns its final hidden states into the logits its loss sees.

    ``logits = cap(scale * (hidden @ W.T + b))`` with ``cap(z) = c * tanh(z / c)``,
    each read from the model the way its ``forward`` reads it.

    Parameters
    ----------
    softcap : callable, optional
        ``model -> c`` (``None``: no cap), e.g. ``config.final_logit_softcapping``.
    scale : callable, optional
        ``model -> scale`` (default 1).
    """

    softcap: Callable[[Any], float | None] | None = None
    scale: Callable[[Any], float] | None = None

    def cap_of(self, model: Any) -> float | None:
        """The softcap ``c`` of ``model``, or None."""
        value = None if self.softcap is None else self.softcap(model)
        return None if value is None else float(value)

    def scale_of(self, model: Any) -> float:
        """The factor ``model``'s logits are multiplied by before the cap."""
        return 1.0 if self.scale is None else float(self.scale(model))


_PLAIN = Family()
_SOFTCAPPED = Family(softcap=lambda model: model.config.final_logit_softcapping)

#: Supported classes, by ``type(model).__name__``. Each one's ``forward`` was
#: read (transformers 5.x) to be: decoder -> ``slice_logits_to_keep`` ->
#: ``lm_head`` -> the listed transform -> ``self.loss_function(logits, labels,
#: vocab_size, **kwargs)``, and is tested against its unpatched self. MoE
#: classes are absent on purpose: their forward adds a router loss after the
#: LM loss.
FAMILIES: dict[str, Family] = {
    "LlamaForCausalLM": _PLAIN,
    "MistralForCausalLM": _PLAIN,
    "Qwen2ForCausalLM": _PLAIN,
    "Qwen3ForCausalLM": _PLAIN,
    "GemmaForCausalLM": _PLAIN,
    "Gemma2ForCausalLM": _SOFTCAPPED,
    "Gemma3ForCausalLM": _SOFTCAPPED,  # text-only Gemma 3 (Gemma3TextConfig)
    "GraniteForCausalLM": Family(scale=lambda model: 1.0 / model.config.logits_scaling),
    "CohereForCausalLM": Family(scale=lambda model: model.logit_scale),
}

#: The families shipped above: their classes' ``forward`` is the one that was read, so a class of that
#: name whose ``forward`` comes from elsewhere is refused (:func:`_refuse_unread_forward`). A family the
#: user registers (a new :class:`Family` object) vouches for its own class.
_SHIPPED = dict(FAMILIES)


# --------------------------------------------------------------------------- public API


def apply(model: Any) -> Any:
    """Make ``model`` compute its training loss with the fused linear + cross-entropy.

    In place: ``model.__class__`` becomes a subclass of its class (same name)
    with the fused ``forward``; the class and other instances are untouched,
    and ``state_dict`` keys and ``save_pretrained`` are unchanged.
    Idempotent: applying twice is the same as once.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM whose class is in :data:`FAMILIES` (Llama, Mistral,
        Qwen2, Qwen3, Gemma, Gemma-2, Gemma-3 text, Granite, Cohere). Apply it
        before wrapping the model (PEFT's ``get_peft_model``, accelerate,
        ``torch.compile``): the wrappers call the patched forward.

    Returns
    -------
    model
        The same object, patched.

    Raises
    ------
    TypeError
        ``model`` is not a supported class, or its output embedding is not
        a plain ``nn.Linear`` (e.g. LoRA on ``lm_head``, or quantised).
    ValueError
        ``model.loss_function`` was replaced (the fused loss would silently
        ignore it), or ``model.forward`` was already replaced on the
        instance by something else.

    Notes
    -----
    See the module docstring for what the patched forward returns
    (``outputs.logits`` is ``None`` on the fused path) and the semantics of
    the loss (shift, ``ignore_index``, ``num_items_in_batch``, softcap,
    tied embeddings, ``logits_to_keep``).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"apply(model) needs a transformers causal LM (a torch.nn.Module), got {type(model).__name__}")
    name = type(model).__name__
    family = FAMILIES.get(name)
    if family is None:
        hint = (
            " Apply it to the base model before wrapping it (e.g. before peft.get_peft_model)."
            if name.startswith("Peft") or "forward" in model.__dict__
            else f" If {name}.forward is decoder -> lm_head -> (softcap/scale) -> self.loss_function, "
            f"register it: softmaxkit.integrations.transformers.FAMILIES[{name!r}] = Family(...)."
        )
        raise TypeError(
            f"softmaxkit.integrations.transformers.apply does not support {name}; supported classes: "
            f"{', '.join(sorted(FAMILIES))}.{hint}"
        )
    if is_applied(model):
        return model
    _refuse_unread_forward(type(model), family)
    if "forward" in model.__dict__:
        raise ValueError(
            f"{name}.forward is already replaced on this instance (by accelerate, peft or another patch); "
            "call softmaxkit.integrations.transformers.apply(model) before wrapping the model"
        )
    head = model.get_output_embeddings()
    if not _is_plain_linear(head):
        raise TypeError(
            f"{name}'s output embedding must be a plain torch.nn.Linear to be fused, got {type(head).__name__}"
        )
    if model.loss_function is not ForCausalLMLoss:
        raise ValueError(
            f"{name}.loss_function is {getattr(model.loss_function, '__name__', model.loss_function)!r}, "
            "not transformers' ForCausalLMLoss; the fused loss would ignore it"
        )
    model.__class__ = _patched_class(type(model), family)
    return model


def _refuse_unread_forward(cls: type, family: Family) -> None:
    """Raise ``TypeError`` when ``cls`` has a shipped family's name but its ``forward`` is not the
    transformers forward that family was read from.

    The family is looked up by class name, and the fused forward calls the class's ``forward`` with
    ``labels=None`` and computes plain cross-entropy itself, so whatever another ``forward`` did with
    the labels or logits was dropped without a word (audit: a same-named remote-code class or a
    class-level patch adding a z-loss term gave 6.89 for 11.67). The ``forward`` that runs must be
    defined in a ``transformers.models`` module, by the class that defines it.
    """
    if _SHIPPED.get(cls.__name__) is not family:
        return  # registered by the user for their own class
    owner = next((k for k in cls.__mro__ if "forward" in vars(k)), None)
    forward = vars(owner).get("forward") if owner is not None else None
    where = getattr(forward, "__module__", None)
    if owner is not None and owner.__module__.startswith("transformers.models.") and where == owner.__module__:
        return
    raise TypeError(
        f"{cls.__name__}.forward comes from {where or 'nowhere'} (class from {cls.__module__}), not from "
        "transformers' own modeling code, which is what softmaxkit read for this class: the fused loss would "
        "drop whatever that forward does with the labels or logits. If it is decoder -> lm_head -> "
        f"(softcap/scale) -> self.loss_function, register it: FAMILIES[{cls.__name__!r}] = Family(...)"
    )


def revert(model: Any) -> Any:
    """Undo :func:`apply` in place (the model computes its logits again); returns ``model``.

    A model that is not patched is returned unchanged.
    """
    unpatched = getattr(type(model), "_softmaxkit_unpatched_class", None)
    if unpatched is not None:
        model.__class__ = unpatched
    return model


def is_applied(model: Any) -> bool:
    """Whether :func:`apply` has patched ``model`` (this instance)."""
    return getattr(type(model), "_softmaxkit_unpatched_class", None) is not None


# --------------------------------------------------------------------------- the patched class


@functools.lru_cache(maxsize=None)
def _patched_class(cls: type, family: Family) -> type:
    """``cls`` with the fused ``forward``: same name, module and docs, so that
    transformers' name-based lookups (loss type, Trainer, auto classes) see ``cls``."""
    namespace = {
        "forward": _fused_forward(cls, family),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__reduce_ex__": _reduce_patched,
        "_softmaxkit_unpatched_class": cls,
    }
    return type(cls.__name__, (cls,), namespace)


def _reduce_patched(self, protocol):
    # pickle (and deepcopy) by the importable class, then patch again on load
    return _unpickle_patched, (type(self)._softmaxkit_unpatched_class,), self.__dict__


def _unpickle_patched(cls: type) -> Any:
    obj = cls.__new__(cls)
    family = FAMILIES.get(cls.__name__)
    if family is not None:
        obj.__class__ = _patched_class(cls, family)
    return obj


# --------------------------------------------------------------------------- the patched forward


@functools.lru_cache(maxsize=None)
def _fused_forward(cls: type, family: Family):
    """The replacement ``forward`` for ``cls`` (one function per class and family).

    ``functools.wraps`` keeps the original signature visible to
    ``inspect.signature``: the Trainer reads it to decide which dataset
    columns to keep and whether to pass ``num_items_in_batch``.
    """
    original = cls.forward
    signature = inspect.signature(original)
    var_keyword = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    if "labels" not in signature.parameters or var_keyword is None:
        raise TypeError(f"{cls.__name__}.forward has no `labels` or no **kwargs; it cannot be fused")

    @functools.wraps(original)
    def forward(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        labels = bound.arguments.get("labels")
        # Fused only where a gradient is wanted: without one the logits are what the caller asks for
        # (audit BY: train mode under no_grad, out.logits None in a validation loop).
        if labels is None or not self.training or not torch.is_grad_enabled():
            return original(self, *args, **kwargs)
        head = self.get_output_embeddings()
        obstacle = _obstacle_to_fusing(self, head)
        if obstacle is not None:  # the original computes what the user set up; never a different loss
            warnings.warn(
                f"softmaxkit: {cls.__name__} computes its loss unfused (with the logits) because {obstacle}",
                UserWarning, stacklevel=2,
            )  # fmt: skip
            return original(self, *args, **kwargs)
        extra = bound.arguments.setdefault(var_keyword, {})
        # return_dict is a parameter in transformers 4.x and a **kwargs entry (read by
        # `can_return_tuple`) in 5.x; either way: the call's value, else the config's
        if "return_dict" in signature.parameters:
            return_dict = bound.arguments.get("return_dict")
            bound.arguments["return_dict"] = True
        else:
            return_dict = extra.pop("return_dict", None)
            extra["return_dict"] = True
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        bound.arguments["labels"] = None
        with _projection_skipped(head) as taken:
            outputs = original(*bound.args, **bound.kwargs)
        if len(taken) != 1:
            raise RuntimeError(
                f"{cls.__name__}.forward called its output embedding {len(taken)} times (expected once); "
                "it cannot be fused"
            )
        loss = causal_lm_loss(
            taken[0], head, labels, softcap=family.cap_of(self), scale=family.scale_of(self),
            ignore_index=extra.get("ignore_index", -100),
            num_items_in_batch=extra.get("num_items_in_batch"),
            shift_labels=extra.get("shift_labels"),
        )  # fmt: skip
        fields = {key: value for key, value in outputs.items() if key not in ("loss", "logits")}
        outputs = type(outputs)(loss=loss, logits=None, **fields)
        if return_dict:
            return outputs
        # to_tuple() drops None fields: without the placeholder outputs[1] would be
        # the cache, where code written for the unpatched model reads the logits.
        return (loss, None, *outputs.to_tuple()[1:])

    return forward


def _is_plain_linear(head: Any) -> bool:
    """``head(x)`` is exactly ``F.linear(x, head.weight, head.bias)``: an ``nn.Linear``
    whose ``forward`` nobody replaced (not a LoRA, quantised or offloaded layer)."""
    return (
        isinstance(head, torch.nn.Linear)
        and type(head).forward is torch.nn.Linear.forward
        and "forward" not in head.__dict__
    )


def _obstacle_to_fusing(model: Any, head: Any) -> str | None:
    """Why this call cannot be fused (something changed since :func:`apply`), or None."""
    if model.loss_function is not ForCausalLMLoss:
        return "model.loss_function was replaced"
    if not _is_plain_linear(head):
        return f"its output embedding is now a {type(head).__name__}, not a plain torch.nn.Linear"
    # hooks could change the logits (or, like ZeRO-3's, gather and release the weight around the call)
    hooks = [head._forward_hooks, head._forward_pre_hooks]
    hooks += [getattr(torch.nn.modules.module, name, {}) for name in ("_global_forward_hooks", "_global_forward_pre_hooks")]
    if any(hooks):
        return "its output embedding has forward hooks"
    return None


@contextlib.contextmanager
def _projection_skipped(head: torch.nn.Module) -> Iterator[list]:
    """While active, ``head`` records its input and projects zero tokens instead.

    The forward then builds a ``(..., 0, V)`` logits tensor (no memory, no
    FLOPs) and runs its softcap or scaling on it for free. The hook is added
    per call and removed after, so nothing stays on the module (a resized
    ``lm_head``, a deepcopy or ``save_pretrained`` see a plain module).
    """
    taken: list[torch.Tensor] = []

    def take_input(module, args, kwargs):
        if args:
            hidden, rest = args[0], args[1:]
            taken.append(hidden)
            return (hidden[..., :0, :], *rest), kwargs
        hidden = kwargs["input"]
        taken.append(hidden)
        return args, {**kwargs, "input": hidden[..., :0, :]}

    handle = head.register_forward_pre_hook(take_input, with_kwargs=True)
    try:
        yield taken
    finally:
        handle.remove()


def causal_lm_loss(
    hidden: torch.Tensor,
    head: torch.nn.Linear,
    labels: torch.Tensor,
    *,
    softcap: float | None = None,
    scale: float = 1.0,
    ignore_index: int = -100,
    num_items_in_batch: Any = None,
    shift_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""transformers' ``ForCausalLMLoss`` on ``head(hidden)``, without the logits.

    Parameters
    ----------
    hidden : torch.Tensor of shape (..., D)
        The projection's input (after ``logits_to_keep``).
    head : torch.nn.Linear
        The output projection, weight (V, D), optional bias (V,).
    labels : torch.Tensor of int, shape (B, T)
        Unshifted labels; ignored when ``shift_labels`` is given.
    softcap : float, optional, keyword-only
        ``c`` in ``c * tanh(logits / c)``.
    scale : float, keyword-only
        The logits are ``scale * head(hidden)`` before the cap.
    ignore_index : int, keyword-only
    num_items_in_batch : int or torch.Tensor, optional, keyword-only
        Given: ``sum / num_items_in_batch``; else the mean over kept targets.
    shift_labels : torch.Tensor, optional, keyword-only
        Targets already aligned with ``hidden`` (one per row).

    Returns
    -------
    torch.Tensor
        Scalar loss; float32 for 16-bit models, else the model's dtype.

    Raises
    ------
    ValueError
        The kept positions (``hidden``'s rows) do not line up with the targets.
    """
    if shift_labels is None:
        # position i predicts label i + 1; the last position has no target
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    target = shift_labels.reshape(-1).to(hidden.device)
    rows = hidden.reshape(-1, hidden.shape[-1])  # (N, D)
    if rows.shape[0] != target.shape[0]:
        raise ValueError(
            f"the model kept {rows.shape[0]} positions (hidden states {tuple(hidden.shape)}) but the labels "
            f"give {target.shape[0]} targets after the shift (labels {tuple(labels.shape)}); with labels, "
            "logits_to_keep must keep every position (0, the default), or pass shift_labels aligned with the "
            "kept positions"
        )
    weight, bias = head.weight, head.bias
    if rows.dtype != weight.dtype:
        # e.g. an fp32 norm output under autocast: compute at the weight's precision, casting the small
        # (N, D) operand rather than the (V, D) weight
        rows = rows.to(weight.dtype)
    if scale != 1.0:
        rows = rows * scale
        bias = None if bias is None else bias * scale
    reduction = "mean" if num_items_in_batch is None else "sum"
    options = {} if softcap is None else {"softcap": softcap}
    # transformers' loss dtype for 16-bit models is float32: asked of the fused loss itself, so
    # neither its value nor the backward's upstream gradient (1 / num_items_in_batch) is rounded to 16 bits
    loss_dtype = torch.float32 if weight.dtype in (torch.float16, torch.bfloat16) else None
    loss = linear_cross_entropy(
        rows, weight, target, bias=bias, ignore_index=ignore_index, reduction=reduction, loss_dtype=loss_dtype,
        **options,
    )  # fmt: skip
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    return loss
