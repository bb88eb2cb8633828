"""The lstm project: connectors (offline, Yahoo Finance against a recorded response, Yahoo CSV),
no look-ahead in features, scalers, split and ARIMA, params checked before anything runs, clear
errors that leave no output, the model's cells, and the whole pipeline on both backends."""

import copy
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.errors import UserError
from xlalab.lstm.baselines import arima_forecast, moving_average_forecast
from xlalab.lstm.evaluate import training_warnings
from xlalab.lstm.featurize import add_indicators, clean_prices, featurize_prices, indicator_columns
from xlalab.lstm.model import RecurrentForecaster
from xlalab.lstm.project import PROJECT, DownloadParams
from xlalab.lstm.sources import local, offline, yahoo, yfinance
from xlalab.pipeline.params import parse
from xlalab.pipeline.report import METRIC_KEYS
from xlalab.pipeline.runner import run_stage
from xlalab.results import reports

FEATURES = ["log_return", "return", "sma", "ema", "rsi", "macd", "volatility", "volume_change"]
PERIODS = {
    "sma": 5,
    "ema": 4,
    "rsi": 5,
    "macd_fast": 3,
    "macd_slow": 6,
    "macd_signal": 3,
    "volatility": 5,
}
REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def random_walk(n=300, seed=0, start="2015-01-02", ar=0.0):
    """Daily prices whose log returns are noise, or an AR(1) process with coefficient ``ar``."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.015, n)
    for t in range(1, n):
        returns[t] += ar * returns[t - 1]
    close = 50 * np.exp(np.cumsum(returns))
    return pd.DataFrame(
        {
            "Date": pd.bdate_range(start, periods=n),
            "Open": close * 0.995,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": rng.integers(1e6, 5e6, n).astype(float),
        }
    )


def params(tmp_path, **overrides):
    """A small, fast lstm section; ``overrides`` are dotted keys inside it
    (``train.cell="gru"``)."""
    p = {
        "runtime": {
            "backend": "accelerate",
            "precision": "no",
            "compile": False,
            "xla_cache": False,
            "cpu_threads": 1,
            "processes": 1,
        },
        "lstm": {
            "seed": 0,
            "window": 10,
            "horizon": 1,
            "download": {
                "source": "local",
                "ticker": "TEST",
                "start": "2000-01-01",
                "end": "2030-01-01",
                "path": str(tmp_path / "prices.csv"),
            },
            "featurize": {
                "dates": "fix",
                "features": FEATURES,
                "indicators": dict(PERIODS),
                "split": {"val": 0.2, "test": 0.2},
            },
            "train": {
                "cell": "lstm",
                "compare_cells": ["gru"],
                "layers": 1,
                "hidden": 8,
                "dropout": 0.0,
                "loss": "mae",
                "epochs": 2,
                "batch_size": 32,
                "lr": 0.01,
                "weight_decay": 0.0,
                "optimizer": "adamw",
                "scheduler": "constant",
                "warmup_fraction": 0.0,
                "grad_accum_steps": 1,
                "max_grad_norm": 1.0,
                "patience": 3,
                "eval_batch_size": None,
            },
            "evaluate": {
                "moving_average": 5,
                "arima": {"order": [0, 1, 0], "max_p": 1, "max_q": 1, "select_days": 100},
                "block": None,
            },
        },
    }
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = p["lstm"]
        for k in parents:
            node = node[k]
        node[last] = value
    return p


def yahoo_csv(frame, path):
    """Write ``frame`` in Yahoo's export layout (Adj Close = Close here)."""
    out = frame.copy()
    out["Adj Close"] = out["Close"]
    out = out[["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]]
    out.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


def files_under(root):
    return sorted(str(f.relative_to(root)) for f in Path(root).rglob("*") if f.is_file())


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Stages write under the current directory: run them in a fresh one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_pipeline(p, stages=("download", "featurize", "train", "evaluate", "plot")):
    """Run ``stages``; evaluate's details (reports/lstm/details.json)."""
    for stage in stages:
        run_stage("lstm", stage, copy.deepcopy(p))
    return json.loads(PROJECT.paths.details.read_text())


# --- no look-ahead ---------------------------------------------------------------------------
def test_indicators_at_day_t_use_only_days_up_to_t():
    prices = random_walk(200)
    full = add_indicators(prices, FEATURES, PERIODS)
    cols = indicator_columns(FEATURES)
    for t in (20, 77, 150):
        truncated = add_indicators(prices.iloc[: t + 1], FEATURES, PERIODS)
        np.testing.assert_allclose(
            truncated[cols].to_numpy(), full[cols].iloc[: t + 1].to_numpy(), rtol=1e-12
        )


def test_missing_values_are_filled_from_the_past_only():
    prices = random_walk(50)
    prices.loc[10, "Close"] = np.nan
    clean, report = clean_prices(prices)
    assert clean.loc[10, "Close"] == prices.loc[9, "Close"]
    assert report["missing_values"]["Close"] == 1


def test_scalers_and_training_windows_ignore_the_test_period():
    prices = random_walk(400)
    a_table, a, a_report = featurize_prices(prices, FEATURES, PERIODS, 10, 1, 0.2, 0.2)
    shocked = prices.copy()
    test_start = pd.Timestamp(a_report["first_day"]["test"])
    shocked.loc[shocked["Date"] >= test_start, ["Close", "Volume"]] *= 3.0  # a crash in the future
    _, b, b_report = featurize_prices(shocked, FEATURES, PERIODS, 10, 1, 0.2, 0.2)
    assert a_report["scaler"] == b_report["scaler"] and a_report["target"] == b_report["target"]
    before_test = a.split < 2
    np.testing.assert_array_equal(a.x[before_test], b.x[before_test])
    np.testing.assert_array_equal(a.y[before_test], b.y[before_test])
    assert not np.array_equal(a.x[a.split == 2], b.x[a.split == 2])


def test_inputs_are_standardised_on_training_days():
    table, w, report = featurize_prices(random_walk(400), FEATURES, PERIODS, 10, 1, 0.2, 0.2)
    columns = report["scaler"]["columns"]
    train_days = table.loc[table["split"] == "train", columns].to_numpy()
    np.testing.assert_allclose(report["scaler"]["mean"], train_days.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(report["scaler"]["std"], train_days.std(axis=0), rtol=1e-9)
    # the last input row of every window is its origin day, scaled with those numbers
    origin_rows = table[columns].to_numpy()[w.origin]
    np.testing.assert_allclose(
        w.x[:, -1, :],
        (origin_rows - report["scaler"]["mean"]) / report["scaler"]["std"],
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("horizon", [1, 5])
def test_no_training_sample_sees_or_predicts_a_later_split(horizon):
    table, w, _ = featurize_prices(random_walk(400), FEATURES, PERIODS, 15, horizon, 0.2, 0.2)
    day_split = table["split"].map({"train": 0, "val": 1, "test": 2}).to_numpy()
    first_val, first_test = np.argmax(day_split == 1), np.argmax(day_split == 2)
    train, test = w.split == 0, w.split == 2
    assert w.target[train].max() < first_val  # the last day a training sample touches
    assert (w.target[test] >= first_test).all() and w.target[~test].max() < first_test
    assert (w.target - w.origin == horizon).all()
    log_close = np.log(table["Close"].to_numpy())
    y_raw = log_close[w.target] - log_close[w.origin]
    np.testing.assert_allclose(
        (y_raw - y_raw[train].mean()) / y_raw[train].std(), w.y, rtol=1e-4, atol=1e-5
    )


def test_arima_forecast_at_day_t_ignores_later_days():
    close = random_walk(300)["Close"].to_numpy()
    origin = np.arange(200, 299)
    a, info = arima_forecast(close, 180, origin, 1, [1, 1, 0], 1, 1, 100)
    later = close.copy()
    later[251:] *= 2.0
    b, _ = arima_forecast(later, 180, origin, 1, [1, 1, 0], 1, 1, 100)
    untouched = origin < 251
    np.testing.assert_allclose(a[untouched], b[untouched], rtol=1e-10)
    assert not np.allclose(a[~untouched], b[~untouched])
    assert info["order"] == [1, 1, 0]


def test_metrics_in_price_units_and_naive_reference():
    actual, last = np.array([10.0, 11.0, 10.0, 12.0]), np.array([9.0, 10.0, 11.0, 10.0])
    m = reports.forecasting(
        actual, last + 0.5, last, naive_mae=np.abs(last - actual).mean(), scale=1.0
    )
    assert m["mae"] == pytest.approx(1.0) and m["directional_accuracy"] == pytest.approx(0.75)
    assert m["mae_vs_naive"] == pytest.approx(0.8) and m["rmse"] == pytest.approx(np.sqrt(1.25))
    naive = reports.forecasting(actual, last, last, naive_mae=1.25, scale=1.0)
    assert naive["directional_accuracy"] is None and naive["mae_vs_naive"] == 1.0
    assert moving_average_forecast(np.arange(10.0), np.array([4, 9]), 3).tolist() == [3.0, 8.0]


# --- the model ---------------------------------------------------------------------------------
def test_model_builds_both_cells_and_rejects_any_other():
    import torch

    assert isinstance(RecurrentForecaster("lstm", 3, 4, 1, 0.0).rnn, torch.nn.LSTM)
    # torch_xla (imported by the tests) swaps nn.GRU for its own; the model keeps PyTorch's
    assert isinstance(
        RecurrentForecaster("gru", 3, 4, 1, 0.0).rnn, getattr(torch.nn.GRU, "_orig", torch.nn.GRU)
    )
    assert RecurrentForecaster("gru", 3, 4, 1, 0.0)(torch.zeros(2, 5, 3)).shape == (2,)
    for cell in ("rnn", "LSTM", ""):
        with pytest.raises(ValueError, match="unknown recurrent cell"):
            RecurrentForecaster(cell, 3, 4, 1, 0.0)


def windows(n=96, window=12, features=3, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, window, features, generator=g), "y": torch.randn(n, generator=g)}


def forecaster(cell, layers=2, features=3):
    import torch

    torch.manual_seed(0)
    return RecurrentForecaster(cell, features, 8, layers, 0.0)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_scanned_time_steps_compute_what_the_fused_module_does(cell, layers):
    """The cell equations the XLA path scans, run here as a plain loop on the CPU, against
    nn.LSTM / nn.GRU's own kernels on the same weights: outputs and gradients."""
    import torch

    from xlalab.lstm.model import scanned_last_hidden

    x = windows()["x"]
    fused, scanned = forecaster(cell, layers), forecaster(cell, layers)
    expected = fused.rnn(x)[0][:, -1]
    got = scanned_last_hidden(scanned.rnn, x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    expected.square().sum().backward()
    got.square().sum().backward()
    for a, b in zip(fused.rnn.parameters(), scanned.rnn.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_on_xla_follows_the_fused_kernels_on_cpu(cell, accelerate_backend, xla_backend):
    """Same initial weights, same batches: an epoch through scan on XLA ends with the weights that
    nn.LSTM / nn.GRU's eager kernels reach on the CPU."""
    from configs import train_config

    from xlalab.engine.loop import fit
    from xlalab.lstm.model import forecast_task

    data, cfg = windows(), train_config(epochs=1, batch_size=32, lr=0.01, seed=3)
    trained = {
        b.name: fit(forecaster(cell), data, windows(n=32, seed=1), forecast_task("mae"), cfg, b)
        for b in (accelerate_backend, xla_backend)
    }
    cpu, xla = (trained[name].best_state for name in ("accelerate", "xla"))
    assert cpu.keys() == xla.keys()
    for name in cpu:
        assert (cpu[name] - xla[name]).abs().max() < 1e-5, name


@pytest.mark.parametrize("trained_on", ["accelerate", "xla"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_checkpoint_from_either_backend_predicts_the_same_on_both(
    cell, trained_on, request, tmp_path
):
    """The weights are nn.LSTM / nn.GRU's on both paths: a safetensors file written after
    training on one backend loads into the model on the other and gives the same forecasts."""
    from configs import train_config

    from xlalab.engine.loop import fit, predict
    from xlalab.lstm.model import forecast_task
    from xlalab.pipeline.artifacts import load_weights, save_weights

    data, val = windows(), windows(n=40, seed=1)
    cfg = train_config(epochs=2, batch_size=32, lr=0.01, seed=0)
    trainer = request.getfixturevalue(f"{trained_on}_backend")
    result = fit(forecaster(cell), data, val, forecast_task("mae"), cfg, trainer)
    weights = load_weights(save_weights(result.best_state, tmp_path / f"{cell}.safetensors"))
    assert weights.keys() == forecaster(cell).state_dict().keys()
    predictions = {}
    for name in ("accelerate", "xla"):
        model = forecaster(cell)
        model.load_state_dict(weights)
        predictions[name] = predict(model, val, request.getfixturevalue(f"{name}_backend"), 16)
    assert predictions["xla"].shape == (40,)
    assert (predictions["xla"] - predictions["accelerate"]).abs().max() < 1e-5


def test_on_xla_the_time_steps_are_one_loop_in_the_graph(xla_backend):
    """A window 8 times longer gives a graph of the same size: the steps are a While loop, not
    unrolled (unrolled, each time step adds its own nodes)."""
    import torch_xla.debug.metrics as met

    from xlalab.engine.loop import predict

    largest = []
    for window in (4, 32):
        before = (met.metric_data("TensorsGraphSize") or (0,))[0]
        predict(forecaster("lstm"), windows(n=32, window=window), xla_backend, 16)
        count, _, samples = met.metric_data("TensorsGraphSize")
        largest.append(max(size for _, size in samples[before - count :]))
    assert largest[0] == largest[1]


# --- connectors ------------------------------------------------------------------------------
def recorded_history(tz_aware=True):
    """yfinance 1.7 ``Ticker('MSFT').history(start, end, auto_adjust=True, actions=False)``: flat
    columns, a DatetimeIndex named Date in the exchange's time zone (values: MSFT closes)."""
    index = pd.DatetimeIndex(
        ["2017-11-06", "2017-11-07", "2017-11-08", "2017-11-09", "2017-11-10"], name="Date"
    )
    if tz_aware:
        index = index.tz_localize("America/New_York")
    return pd.DataFrame(
        {
            "Open": [84.20, 84.77, 84.14, 84.11, 83.79],
            "High": [84.70, 84.90, 84.61, 84.27, 84.10],
            "Low": [84.08, 83.93, 83.83, 82.90, 83.23],
            "Close": [84.47, 84.26, 84.56, 84.09, 83.87],
            "Volume": [19852151, 17569120, 18029584, 21175384, 19396301],
        },
        index=index,
    )


def recorded_download():
    """yfinance 1.7 ``download('MSFT', ...)``: tz-naive Date index, MultiIndex columns (Price,
    Ticker)."""
    frame = recorded_history(tz_aware=False)[["Close", "High", "Low", "Open", "Volume"]]
    frame.columns = pd.MultiIndex.from_product([frame.columns, ["MSFT"]], names=["Price", "Ticker"])
    return frame


@pytest.mark.parametrize(
    "frame", [recorded_history(), recorded_download()], ids=["history", "download"]
)
def test_both_yfinance_shapes_normalise_to_the_same_prices(frame):
    out = yahoo.normalise_yahoo_frame(frame, "msft")
    assert list(out.columns) == yahoo.COLUMNS
    assert out["Date"].dt.strftime("%Y-%m-%d").tolist()[0] == "2017-11-06"
    assert out["Close"].tolist() == [84.47, 84.26, 84.56, 84.09, 83.87]


class FakeTicker:
    calls = []

    def __init__(self, symbol, responses):
        self.symbol, self.responses = symbol, responses

    def history(self, **kwargs):
        FakeTicker.calls.append(kwargs)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response


def fake_yfinance(monkeypatch, responses):
    import yfinance

    FakeTicker.calls = []
    monkeypatch.setattr(yfinance, "Ticker", lambda symbol: FakeTicker(symbol, responses))


def test_yfinance_retries_network_errors_with_back_off(monkeypatch):
    fake_yfinance(monkeypatch, [ConnectionError("reset"), TimeoutError("slow"), recorded_history()])
    waits = []
    out = yfinance.fetch_yfinance("MSFT", "2017-11-06", "2017-11-11", sleep=waits.append)
    assert waits == [1.0, 2.0] and len(out) == 5
    assert (
        FakeTicker.calls[-1]["auto_adjust"] is True and FakeTicker.calls[-1]["end"] == "2017-11-11"
    )


def test_yfinance_download_stage_writes_prices_and_card(monkeypatch, workdir):
    fake_yfinance(monkeypatch, [recorded_history()])
    p = params(
        workdir,
        **{
            "download.source": "yfinance",
            "download.ticker": "MSFT",
            "download.start": datetime.date(2017, 11, 1),
            "download.end": "2017-11-11",
        },
    )
    run_stage("lstm", "download", p)
    card = json.loads(PROJECT.paths.card.read_text())
    assert card["rows"] == 5 and card["range"] == {
        "start": "2017-11-01",
        "end_exclusive": "2017-11-11",
    }
    import hashlib

    assert (
        card["sha256"]
        == hashlib.sha256((PROJECT.paths.raw / "prices.csv").read_bytes()).hexdigest()
    )


@pytest.mark.parametrize("response", ["missing", "empty"])
def test_unknown_ticker_is_one_clear_error_and_no_output(monkeypatch, workdir, response):
    from yfinance.exceptions import YFTzMissingError

    fake_yfinance(
        monkeypatch,
        [YFTzMissingError("NOPE") if response == "missing" else recorded_history().iloc[:0]],
    )
    p = params(workdir, **{"download.source": "yfinance", "download.ticker": "NOPE"})
    with pytest.raises(UserError, match="NOPE.*(unknown or delisted)"):
        run_stage("lstm", "download", p)
    assert files_under(workdir) == []


def test_yahoo_export_csv_uses_adjusted_close(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,10,11,9,10,5,100\n"
        "2020-01-03,null,null,null,null,null,null\n2020-01-06,12,12,10,11,5.5,80\n"
    )
    out = local.read_yahoo_csv(path)
    assert out["Close"].tolist()[::2] == [5.0, 5.5] and out["Open"].iloc[0] == 5.0
    clean, report = clean_prices(out)
    assert report["missing_values"]["Close"] == 1 and clean["Close"].iloc[1] == 5.0


def test_offline_source_is_real_msft():
    out = yahoo.select_range(offline.load_offline(), "2017-11-01", "2017-11-11", "MSFT", "")
    assert out["Date"].iloc[-1] == pd.Timestamp("2017-11-10") and out["Close"].iloc[
        -1
    ] == pytest.approx(83.87)


# --- clear errors, no output ------------------------------------------------------------------
def broken(kind):
    prices = random_walk(120)
    if kind == "unsorted":
        return (
            prices.iloc[[*range(50), 51, 50, *range(52, 120)]],
            "strict",
            "not in increasing order",
        )
    if kind == "conflicting duplicate":
        dup = prices.iloc[[40]].assign(Close=999.0)
        return pd.concat([prices, dup]), "fix", "appear twice with different prices"
    if kind == "duplicate":
        return prices.iloc[[*range(41), 40, *range(41, 120)]], "strict", "appear twice"
    if kind == "all-NaN column":
        return prices.assign(Volume=np.nan), "fix", "column Volume is empty"
    if kind == "window longer than series":
        return prices, "fix", "longer than the training part"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "unsorted",
        "conflicting duplicate",
        "duplicate",
        "all-NaN column",
        "window longer than series",
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_features(workdir, capsys, kind):
    prices, dates, message = broken(kind)
    yahoo_csv(prices, workdir / "prices.csv")
    p = params(
        workdir, **{"featurize.dates": dates, "window": 500 if kind.startswith("window") else 10}
    )
    (workdir / "params.yaml").write_text(yaml.safe_dump(p))
    assert main(["lstm", "download"]) == 0
    before = files_under(workdir)
    capsys.readouterr()
    assert main(["lstm", "featurize"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert files_under(workdir) == before  # no features, no temporary left over


def test_fix_mode_sorts_and_drops_repeated_rows_and_reports_it():
    prices = random_walk(150)
    messy = pd.concat([prices.iloc[::-1], prices.iloc[[3, 7]]])
    clean, report = clean_prices(messy, "fix")
    assert clean["Date"].is_monotonic_increasing and len(clean) == 150
    assert report["duplicate_rows_dropped"] == 2 and report["out_of_order_rows"] > 0


@pytest.mark.parametrize(
    "key,value,stage,message",
    [
        ("window", 0, "featurize", "`lstm.window`"),
        ("train.cell", "rnn", "train", "`lstm.train.cell`"),
        ("train.compare_cells", ["gru", "rnn"], "train", "`lstm.train.compare_cells"),
        ("featurize.features", ["rsi", "alpha"], "featurize", "`lstm.featurize.features"),
        ("featurize.features", ["rsi", "rsi"], "featurize", "names an entry twice"),
        ("featurize.indicators.macd_fast", 30, "featurize", "macd_fast 30 must be shorter"),
        (
            "featurize.split",
            {"val": 0.5, "test": 0.45},
            "featurize",
            "leaves almost no training days",
        ),
        ("download.start", "2031-01-01", "download", "not before"),
        ("download.start", "someday", "download", "YYYY-MM-DD"),
        ("download.ticker", "  ", "download", "`lstm.download.ticker` is empty"),
        ("download.source", "offline", "download", "ships MSFT only"),
        ("evaluate.arima.order", [1, 1], "evaluate", "`lstm.evaluate.arima.order`"),
        ("train.epochs", "3", "train", "`lstm.train.epochs`"),
        ("train.seed", 1, "train", "lstm.seed"),
    ],
)
def test_nonsense_params_are_one_line_exit_2_and_nothing_written(
    workdir, capsys, key, value, stage, message
):
    p = params(workdir, **{key: value})
    (workdir / "params.yaml").write_text(yaml.safe_dump(p))
    assert main(["lstm", stage]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert files_under(workdir) == ["params.yaml"]


def test_dates_are_accepted_as_yaml_dates_or_text(tmp_path):
    as_text = params(tmp_path, **{"download.start": "2008-01-01"})
    as_date = yaml.safe_load("{start: 2008-01-01}")["start"]
    assert isinstance(as_date, datetime.date)
    as_yaml = params(tmp_path, **{"download.start": as_date})
    assert parse(DownloadParams, as_text, "lstm") == parse(DownloadParams, as_yaml, "lstm")


# --- the whole pipeline ------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", ["accelerate", "xla"])
def test_pipeline_reports_every_model_against_the_baselines(workdir, runtime):
    yahoo_csv(random_walk(260), workdir / "prices.csv")
    # On XLA every cell compiles its own graphs: one small model keeps the test short.
    p = (
        params(workdir)
        if runtime == "accelerate"
        else params(workdir, **{"train.cell": "gru", "train.compare_cells": [], "window": 5})
    )
    p["runtime"]["backend"] = runtime
    metrics = run_pipeline(p)
    models = metrics["models"]
    cells = {"lstm", "gru"} if runtime == "accelerate" else {"gru"}
    assert set(models) == cells | {"arima", "naive", "moving_average"}
    for name, m in models.items():
        assert {"mae", "rmse", "mape", "mase", "directional_accuracy"} <= set(m)
        if name != "naive":
            assert 0.0 <= m["dm_pvalue_vs_naive"] <= 1.0
            # no "beats" without significance: the three-way verdict of the Diebold-Mariano test
            significant = m["dm_pvalue_vs_naive"] < 0.05
            lower = m["dm_stat_vs_naive"] < 0
            expected = ("beats" if lower else "loses") if significant else "ties"
            assert m["vs_naive"] == expected and "beats_naive" not in m
    headline = p["lstm"]["train"]["cell"]
    verdict = metrics["verdict"]
    best = min(("naive", "moving_average", "arima"), key=lambda b: models[b]["mae"])
    assert verdict["model"] == headline and verdict["best_baseline"] == best
    assert verdict["score"] == pytest.approx(models[headline]["mae"], abs=1e-6)
    low, high = verdict["difference_interval"]
    assert (verdict["verdict"] == "ties") == (low < 0 < high)
    # a circular block bootstrap of consecutive test days, its length by the n^(1/3) rule
    block = round(metrics["test"]["days"] ** (1 / 3))
    assert verdict["bootstrap"]["unit"] == f"circular blocks of {block} consecutive rows"
    # Diebold-Mariano against the strongest baseline, beside the one against the naive forecast
    h = metrics["headline"]
    assert h["best_baseline"] == best and 0.0 <= h["dm_pvalue_vs_best_baseline"] <= 1.0
    assert all("dm_pvalue_vs_best_baseline" in m for n, m in models.items() if n != best)
    assert h["vs_naive"] == models[headline]["vs_naive"] and "beats_naive" not in h
    assert metrics["runtime"]["backend"] == runtime
    paths = PROJECT.paths
    # the DVC metric: the headline alone, under the keys every project has
    published = json.loads(paths.metrics.read_text())
    assert tuple(published) == METRIC_KEYS
    assert published["score"] == verdict["score"] and published["diff"] == verdict["difference"]
    assert [published["diff_low"], published["diff_high"]] == verdict["difference_interval"]
    assert published["baseline"] == best and published["verdict"] == verdict["verdict"]
    assert published["better"] == "lower" and published["test_rows"] == metrics["test"]["days"]
    assert published["trained_on"].startswith(f"{runtime}, ")
    assert published["warnings"] == len(metrics["warnings"])
    predictions = pd.read_csv(paths.predictions)
    assert len(predictions) == metrics["test"]["days"]
    assert np.abs(predictions[headline] - predictions["actual"]).mean() == pytest.approx(
        models[headline]["mae"],
        rel=5e-4,  # the metrics file keeps 4 significant digits
    )
    rows = json.loads((paths.figures / "forecast.json").read_text())
    assert len(rows) == metrics["test"]["days"] and {
        "date",
        "actual",
        "arima",
        "naive",
        *cells,
    } <= set(rows[0])
    training = json.loads((paths.figures / "training.json").read_text())
    assert {f"{c}_val_mae" for c in cells} <= set(training[0])
    summary = json.loads(paths.summary.read_text())
    assert set(summary["models"]) == cells and summary["headline"] == headline
    assert {f"{c}.safetensors" for c in cells} <= {f.name for f in paths.model.iterdir()}
    assert not list(paths.checkpoints.glob("*"))  # a finished run leaves no checkpoint to "resume"


def shuffled_test_returns(prices: pd.DataFrame, first_test_day: str, seed: int) -> pd.DataFrame:
    """The test days' daily log returns in another order, their prices rebuilt from the last day
    before them (so the path stays continuous and ends where it did); each day's volume and its
    open/high/low relative to its close move with its return."""
    out = prices.copy()
    test = np.flatnonzero(out["Date"] >= pd.Timestamp(first_test_day))
    log_close = np.log(out["Close"].to_numpy())
    returns = np.diff(log_close)[test - 1]
    order = np.random.default_rng(seed).permutation(len(test))
    close = np.exp(log_close[test[0] - 1] + np.cumsum(returns[order]))
    for column in ("Open", "High", "Low"):
        out.loc[test, column] = (out[column] / out["Close"]).to_numpy()[test][order] * close
    out.loc[test, "Volume"] = out["Volume"].to_numpy()[test][order]
    out.loc[test, "Close"] = close
    return out


def test_permuting_the_test_days_changes_the_scores_and_nothing_chosen(workdir):
    """A label-shuffle test for a time series: the test days' returns (the targets) permuted.
    What training and the baselines chose (scalers, each cell's epochs and best epoch, ARIMA's
    order and coefficients, fitted on training days) must stay; only the test scores move."""
    prices = random_walk(300, ar=0.4)  # returns ARIMA can fit an AR term to
    arima = {"order": None, "max_p": 1, "max_q": 1, "select_days": 100}
    p = params(workdir, **{"evaluate.arima": arima, "train.epochs": 4})
    runs = []
    for shuffled in (False, True):
        if shuffled:
            prices = shuffled_test_returns(prices, runs[0]["card"]["first_day"]["test"], seed=1)
        yahoo_csv(prices, workdir / "prices.csv")
        metrics = run_pipeline(p, ("download", "featurize", "train", "evaluate"))
        with np.load(PROJECT.paths.features / "windows.npz") as f:
            windows = {k: f[k] for k in f.files}
        card = json.loads((PROJECT.paths.features / "card.json").read_text())
        runs.append({"metrics": metrics, "card": card, "windows": windows})
    before, after = runs
    for key in ("scaler", "target", "days", "first_day"):
        assert before["card"][key] == after["card"][key]
    seen = before["windows"]["split"] < 2  # training and validation samples
    for key in ("x", "y"):
        np.testing.assert_array_equal(before["windows"][key][seen], after["windows"][key][seen])
        assert not np.array_equal(before["windows"][key][~seen], after["windows"][key][~seen])
    assert before["metrics"]["training"] == after["metrics"]["training"]  # best epochs, val MAE
    chosen = ("order", "with_intercept", "chosen_by", "coefficients")
    a, b = before["metrics"]["models"]["arima"], after["metrics"]["models"]["arima"]
    assert {k: a[k] for k in chosen} == {k: b[k] for k in chosen} and a["chosen_by"] == "auto_arima"
    assert a["order"][0] == 1  # an AR coefficient, which a fit that saw the test days would move
    for name in ("lstm", "gru", "arima", "naive"):
        assert before["metrics"]["models"][name]["mae"] != after["metrics"]["models"][name]["mae"]


def test_a_first_best_epoch_or_unsettled_training_is_a_warning():
    summary = {"models": {"gru": {"settle_note": "training had not settled: ..."}}}
    settled = {"best_epoch": 6, "epochs_run": 11, "stopped_early": True, "settled": True}
    first = {**settled, "best_epoch": 1, "epochs_run": 9}
    unsettled = {**settled, "stopped_early": False, "settled": False}
    assert training_warnings({"lstm": settled}, summary) == []
    (warning,) = training_warnings({"lstm": first}, summary)
    assert "lstm: its best epoch is the first of 9" in warning and "lstm.train.lr" in warning
    assert training_warnings({"gru": unsettled}, summary) == ["gru: training had not settled: ..."]
    # one epoch run is not a first-epoch warning (the settle note says it)
    assert training_warnings({"lstm": {**settled, "best_epoch": 1, "epochs_run": 1}}, summary) == []


def test_same_params_same_metrics_on_cpu(workdir):
    yahoo_csv(random_walk(260), workdir / "prices.csv")
    p = params(workdir, **{"train.compare_cells": []})
    a = run_pipeline(p, ("download", "featurize", "train", "evaluate"))
    b = run_pipeline(p, ("train", "evaluate"))
    assert a["models"] == b["models"]
    import torch

    assert torch.get_num_threads() == 1  # runtime.cpu_threads reached torch


@pytest.mark.xla
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_xla_train_with_default_settings_compiles_and_lowers_loops_only_at_first(
    workdir, cell, monkeypatch
):
    """The train stage on XLA with params.yaml's own window and loop settings (only the epochs
    and the data are small): no step compiles a new graph after the first epoch, and the scanned
    time steps' While loops are lowered once per loop, not at every step."""
    from torch_xla.experimental import scan as xla_scan

    from xlalab.engine import recurrent

    monkeypatch.setattr(recurrent, "_LOOPS", {})  # loops lowered by earlier tests do not count
    lowered = []
    lower = xla_scan._scan_impl_pytree
    monkeypatch.setattr(
        xla_scan, "_scan_impl_pytree", lambda *a, **k: lowered.append(1) or lower(*a, **k)
    )
    defaults = yaml.safe_load(REPO_PARAMS.read_text())["lstm"]
    # 800 days: several optimizer steps per epoch at the default batch size (with two, the first
    # XLA fit of a process compiles one more graph in its second epoch; see the lstm docs)
    yahoo_csv(random_walk(800), workdir / "prices.csv")
    p = params(workdir, window=defaults["window"])
    p["lstm"]["train"] = {
        **defaults["train"],
        "cell": cell,
        "compare_cells": [],
        "epochs": 3,
        "patience": None,
    }
    p["runtime"]["backend"] = "xla"
    for stage in ("download", "featurize", "train"):
        run_stage("lstm", stage, copy.deepcopy(p))
    entry = json.loads(PROJECT.paths.summary.read_text())["models"][cell]
    counts = entry["compile_counts"]
    assert entry["epochs_run"] == 3 and counts[0] > 0
    assert counts[1:] == [counts[0]] * 2, f"XLA recompiled after the first epoch: {counts}"
    # forward and backward loop of the training shape, forward loop of the last eval batch's
    # shape when it differs; without replaying, two per training step and one per eval step
    assert 2 <= len(lowered) <= 3, f"{len(lowered)} While loops lowered in 3 epochs"


def test_diebold_mariano_verdict_needs_significance_to_beat():
    """A forecast only "beats" another when the test rejects equal accuracy: a 0.3 % smaller
    error on noisy days ties, a clearly smaller one beats, a clearly larger one loses."""
    from xlalab.lstm.baselines import diebold_mariano, dm_verdict

    rng = np.random.default_rng(0)
    baseline, fresh = rng.normal(size=400), rng.normal(size=400)
    cases = {"ties": fresh * 0.997, "beats": baseline * 0.5, "loses": baseline * 2}
    for expected, errors in cases.items():
        stat, p_value = diebold_mariano(errors, baseline, 1)
        assert dm_verdict(stat, p_value) == expected, (stat, p_value)
