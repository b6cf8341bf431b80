// Package browsertest holds the dashboard's end-to-end tests: the demo
// (simulated facility, embedded brokers, webhook receiver, gateway) runs
// in-process and headless Chromium (Debian's /usr/bin/chromium, driven
// with chromedp) uses the dashboard as an operator would. The tests are
// skipped under -short and when Chromium is not installed.
package browsertest
