"""Loops over time steps that suit the device they run on: what a recurrent model asks the core.

On an XLA device (``runtime.backend: xla``) a loop written in Python is unrolled: every training
step traces each time step of the forward and the backward pass on the host again before the
cached graph runs (a 60-step LSTM spent about 175 ms of every step tracing). There ``scan`` is
torch_xla's ``scan`` (``torch_xla.experimental.scan``): one XLA While loop in the graph whose body,
``step``, is traced once, with autograd through the loop (AOTAutograd splits ``step`` into a
forward and a backward body, each run by its own While loop). torch_xla 2.9 caches those bodies
(``is_fn_pure``) but still lowers both While loops to HLO again at every call, about as costly as
the rest of a small model's step (pytorch/xla issue 8632); here the lowered loop is built once per
body and input shapes and replayed (``_replayed``), so a step traces the loops' inputs only. On
every other device the fused eager kernels (``nn.LSTM``, ``nn.GRU``) are the fast path: a model
asks ``loops_in_graph(x)`` once per forward pass and keeps its module there. ``scan`` also runs
off XLA, as a plain loop (tests compare both paths on the CPU).

``step(carry, x_t) -> (carry, y_t)``, with ``y_t`` a tensor, must be a module-level function of
its arguments only: no tensors it closes over (they would be frozen at their first value and get
no gradient), no random numbers. Weights that need gradients travel in ``carry``, unchanged.

Projects never import torch_xla: it is imported here only for tensors already on an XLA device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

Step = Callable[[Any, Any], tuple[Any, Any]]


def loops_in_graph(x: torch.Tensor) -> bool:
    """True where a loop over time should be ``scan`` (an XLA device), false where the eager
    fused kernels run (CPU, CUDA)."""
    return x.device.type == "xla"


def scan(step: Step, init: Any, xs: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """``step`` over the leading dimension of ``xs``: the last carry and the stacked ``y_t``
    (one tensor per time step). See the module docstring."""
    if not loops_in_graph(xs):
        carry, ys = init, []
        for x_t in xs:
            carry, y_t = step(carry, x_t)
            ys.append(y_t)
        return carry, torch.stack(ys)
    import torch_xla.runtime as xr
    from torch_xla.experimental import scan as xla_scan

    if xr.is_spmd():  # torch_xla's own Scan also aligns the gradients' shardings with the inputs'
        return xla_scan.scan(step, init, xs, is_fn_pure=True)
    forward, alias_input, backward = xla_scan.value_and_grad_partitioned(
        step, init, xs, is_fn_pure=True
    )
    flat_init, unflatten_carry = xla_scan.tree_flatten_none(init)
    outputs = _ReplayedScan.apply(forward, alias_input, backward, len(flat_init), xs, *flat_init)
    return unflatten_carry(list(outputs[:-1])), outputs[-1]


class _ReplayedScan(torch.autograd.Function):
    """torch_xla's ``Scan`` (the forward loop saves the backward's activations; the backward loop
    runs in reverse), with each loop replayed from ``_replayed`` instead of lowered again."""

    @staticmethod
    def forward(ctx, forward, alias_input, backward, n_carry, xs, *flat_init):
        with torch.no_grad():
            carry, (ys, partial_activations) = _replayed(forward, tuple(flat_init), xs, False)
        activations = alias_input(partial_activations, xs)
        ctx.backward_body, ctx.n_carry = backward, n_carry
        ctx.save_for_backward(*activations)
        return (*tree_flatten(carry)[0], ys)

    @staticmethod
    def backward(ctx, *grads):
        grad_carry, grad_ys = grads[: ctx.n_carry], grads[ctx.n_carry]
        with torch.no_grad():
            grad_init, grad_xs = _replayed(
                ctx.backward_body, tuple(grad_carry), (grad_ys, ctx.saved_tensors), True
            )
        return (None, None, None, None, grad_xs, *tree_flatten(grad_init)[0])


# (body, direction, input structure, shapes, dtypes, autocast) -> what replays its While loop, or
# None where the first call's loop could not be replayed (then it is lowered at every call).
_LOOPS: dict[tuple, tuple | None] = {}


def _replayed(body: Callable, init: Any, xs: Any, reverse: bool) -> tuple[Any, Any]:
    """torch_xla's ``_scan_impl_pytree(body, init, xs, reverse)``: the first call per key lowers
    the While loop as torch_xla does and records the computation it hands to the graph; later
    calls hand the same computation new inputs."""
    import torch_xla
    from torch_xla.experimental import scan as xla_scan

    flat_init, unflatten_carry = xla_scan.tree_flatten_none(init)
    flat_xs, _ = xla_scan.tree_flatten_none(xs)
    device = flat_xs[0].device
    key = (
        body,
        reverse,
        tree_flatten(init)[1],
        tree_flatten(xs)[1],
        tuple((t.shape, t.dtype) for t in (*flat_init, *flat_xs)),
        torch.is_autocast_enabled(device.type),
        torch.get_autocast_dtype(device.type),
    )
    if key not in _LOOPS:
        with _recorded_user_computations() as recorded:
            carry, ys = xla_scan._scan_impl_pytree(body, init, xs, reverse=reverse)
        _LOOPS[key] = _replay_entry(recorded, flat_init, flat_xs, ys)
        return carry, ys
    entry = _LOOPS[key]
    if entry is None:
        return xla_scan._scan_impl_pytree(body, init, xs, reverse=reverse)
    name, computation, ys_like, hoisted, unflatten_ys = entry
    counter = torch.tensor(0, device=device)  # the While loop's iteration, as torch_xla starts it
    ys_buffers = [torch.zeros(shape, dtype=dtype, device=device) for shape, dtype in ys_like]
    inputs = [counter, *flat_init, *flat_xs, *ys_buffers, *hoisted]
    outputs = torch_xla._XLAC._xla_user_computation(name, inputs, computation)
    first_y = 1 + len(flat_init) + len(flat_xs)
    return (
        unflatten_carry(outputs[1 : 1 + len(flat_init)]),
        unflatten_ys(outputs[first_y : first_y + len(ys_like)]),
    )


@contextlib.contextmanager
def _recorded_user_computations():
    """Every (name, inputs, computation) handed to the graph as an XLA computation meanwhile."""
    import torch_xla

    recorded, original = [], torch_xla._XLAC._xla_user_computation

    def record(name, inputs, computation):
        recorded.append((name, list(inputs), computation))
        return original(name, inputs, computation)

    torch_xla._XLAC._xla_user_computation = record
    try:
        yield recorded
    finally:
        torch_xla._XLAC._xla_user_computation = original


def _replay_entry(recorded, flat_init, flat_xs, ys) -> tuple | None:
    """What replays the one While loop in ``recorded``, whose inputs torch_xla lays out as
    (iteration, carry, xs, ys buffers, hoisted tensors). None unless the recording is exactly
    that and every hoisted tensor is a 0-d constant of the body (a random seed is 1-d)."""
    from torch_xla.experimental import scan as xla_scan

    flat_ys, unflatten_ys = xla_scan.tree_flatten_none(ys)
    if len(recorded) != 1:
        return None
    name, inputs, computation = recorded[0]
    first_y = 1 + len(flat_init) + len(flat_xs)
    hoisted = inputs[first_y + len(flat_ys) :]
    if (
        len(inputs) < first_y + len(flat_ys)
        or any(a is not b for a, b in zip(inputs[1:first_y], [*flat_init, *flat_xs]))
        or any(t.dim() for t in hoisted)
    ):
        return None
    ys_like = [(t.shape, t.dtype) for t in inputs[first_y : first_y + len(flat_ys)]]
    return name, computation, ys_like, hoisted, unflatten_ys
