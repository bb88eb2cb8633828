"""Stock-price forecasting: daily prices from Yahoo Finance (or MSFT shipped in pmdarima),
technical indicators, and an LSTM (with a GRU beside it) trained for MAE, judged against the
naive last-value forecast, a moving average and ARIMA on the same test days in price units."""
