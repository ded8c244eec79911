// The demo pages' shared browser client: a JSON WebSocket that reconnects with backoff.
// No build step: load with <script src="/static/client.js"></script>, then use `channelkit.connect()`.
(function () {
  'use strict';

  /** Close codes after which reconnecting the same way cannot help (policy/auth, application refusals). */
  function isFinal(code) {
    return code === 1008 || (code >= 4000 && code <= 4999);
  }

  /** `/ws/chat/lobby/` -> `ws://<this host>/ws/chat/lobby/` (wss:// on an https:// page). */
  function socketUrl(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  }

  /**
   * Opens a JSON WebSocket to `path` on this host and keeps it open. `path` may be a function,
   * called before every attempt, that returns the path or a promise of it: a page whose token
   * expires gets a new one there (a refused handshake reaches the browser only as close 1006).
   *
   * options (all optional):
   *   onMessage(value)     each received frame, parsed as JSON (frames that are not JSON go to onError)
   *   onState(state, info) 'connecting' | 'connected' | 'reconnecting' | 'closed';
   *                        info is {code, reason, delay} when the socket closed
   *   onError(text)        something to show the user (a frame that is not JSON)
   *   minDelay             first reconnect delay in ms, doubled after each failure; default 500
   *   maxDelay             cap of that delay in ms; default 10000
   *
   * Returns {send(value) -> boolean, close(), state()}. send() returns false when not connected
   * (nothing is queued: the caller decides what to tell the user).
   */
  function connect(path, options) {
    var opts = options || {};
    var minDelay = opts.minDelay || 500;
    var maxDelay = opts.maxDelay || 10000;
    var onMessage = opts.onMessage || function () {};
    var onState = opts.onState || function () {};
    var onError = opts.onError || function () {};

    var ws = null;
    var state = null;
    var failures = 0;
    var timer = null;
    var stopped = false;

    function setState(next, info) {
      state = next;
      onState(next, info || {});
    }

    /** Waits out the backoff (exponential, with jitter: a restarted server is not hit by every page at once). */
    function retryLater(info) {
      var base = Math.min(maxDelay, minDelay * Math.pow(2, failures));
      info.delay = Math.round(base / 2 + Math.random() * (base / 2));
      failures++;
      setState('reconnecting', info);
      timer = setTimeout(open, info.delay);
    }

    function open() {
      timer = null;
      if (stopped) return;
      setState(failures === 0 ? 'connecting' : 'reconnecting');
      var target;
      try {
        target = typeof path === 'function' ? path() : path;
      } catch (error) {
        target = Promise.reject(error);
      }
      Promise.resolve(target).then(
        function (resolved) {
          if (!stopped) openSocket(resolved);
        },
        function (error) {
          if (stopped) return;
          onError('could not prepare the connection: ' + (error && error.message ? error.message : String(error)));
          retryLater({ code: 0, reason: 'not attempted' });
        }
      );
    }

    function openSocket(resolvedPath) {
      ws = new WebSocket(socketUrl(resolvedPath));
      ws.onopen = function () {
        failures = 0;
        setState('connected');
      };
      ws.onmessage = function (event) {
        var value;
        try {
          value = JSON.parse(event.data);
        } catch (error) {
          onError('received a frame that is not JSON');
          return;
        }
        onMessage(value);
      };
      ws.onclose = function (event) {
        ws = null;
        if (stopped) return;
        var info = { code: event.code, reason: event.reason };
        if (isFinal(event.code)) {
          stopped = true;
          setState('closed', info);
          return;
        }
        retryLater(info);
      };
    }

    // Back online: try now rather than waiting out the backoff.
    function retryNow() {
      if (timer !== null) {
        clearTimeout(timer);
        open();
      }
    }
    window.addEventListener('online', retryNow);

    open();

    return {
      send: function (value) {
        if (ws === null || ws.readyState !== WebSocket.OPEN) return false;
        ws.send(JSON.stringify(value));
        return true;
      },
      close: function () {
        stopped = true;
        window.removeEventListener('online', retryNow);
        if (timer !== null) clearTimeout(timer);
        timer = null;
        if (ws !== null) ws.close(1000);
        ws = null;
        setState('closed', { code: 1000, reason: 'closed by this page' });
      },
      state: function () {
        return state;
      },
    };
  }

  /** Appends `<tag class=className>text</tag>` to `parent`, as text (never parsed as HTML). */
  function appendText(parent, tag, text, className) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (className) node.className = className;
    parent.appendChild(node);
    return node;
  }

  /** Countdown timers of the state elements, so a new state stops the old countdown. */
  var countdowns = typeof WeakMap === 'function' ? new WeakMap() : null;

  /**
   * Shows a connection state in `element` (text, and data-state for styling and tests). While
   * reconnecting after a delay, the text counts down the seconds to the next attempt.
   */
  function showState(element, state, info) {
    var previous = countdowns && countdowns.get(element);
    if (previous !== undefined && previous !== null) clearInterval(previous);
    element.dataset.state = state;
    if (state === 'reconnecting' && info && info.delay !== undefined) {
      var at = Date.now() + info.delay;
      var tick = function () {
        var seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
        element.textContent = 'reconnecting in ' + seconds + ' s';
        if (seconds === 0 && countdowns) {
          clearInterval(countdowns.get(element));
          countdowns.delete(element);
        }
      };
      tick();
      if (countdowns) countdowns.set(element, setInterval(tick, 250));
      return;
    }
    if (countdowns) countdowns.delete(element);
    var text = state;
    if (state === 'closed' && info && info.code && info.code !== 1000) {
      text += ' (' + info.code + (info.reason ? ': ' + info.reason : '') + ')';
    }
    element.textContent = text;
  }

  window.channelkit = { connect: connect, socketUrl: socketUrl, appendText: appendText, showState: showState };
})();
