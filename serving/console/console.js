// 圈选控制台: the API key, calls to the API, errors in Chinese, progress on long calls, and number formatting.
"use strict";

// What each problem code of the API (serving/problems.py CODES) means to the person at the page.
const CODE_SENTENCES = {
  bad_request: "请求无法解析，请刷新页面后重试。",
  unauthorised: "密钥无效或已停用，请检查后重新输入。",
  forbidden: "这把密钥没有权限做这件事。",
  not_found: "没有找到要查看的内容。",
  unknown_group: "没有这个群，或者它不归这把密钥管。",
  method_not_allowed: "页面发出了不支持的请求，请刷新页面。",
  conflict: "权重刚刚被别人改过，请先载入最新的线上权重再修改。",
  body_too_large: "提交的内容太多，请减少后再试。",
  batch_too_large: "一次提交的条数太多，请分批提交。",
  unsupported_media_type: "请求格式不对，请刷新页面后重试。",
  invalid_request: "输入有误，请按提示修改。",
  invalid_events: "部分数据不合规，没有保存。",
  rate_limited: "操作太频繁，请稍等片刻再试。",
  busy: "同类计算正在进行，请稍等片刻再试。",
  internal: "服务出了点问题，请稍后再试；反复出现请联系技术同事。",
  not_ready: "服务还在加载今天的数据，请稍后再试。",
};

// API field names as a person reads them.
const FIELD_NAMES = {
  price: "价格", commission_rate: "佣金比例", coupon: "优惠券", title: "商品名称", category: "类目",
  product_ids: "商品", reason: "修改原因", version: "版本", k: "推荐条数", date: "日期",
  conversion: "转化权重", earnings: "佣金权重", rating: "好评权重", order_value: "客单价权重",
  diversity: "多样性权重", adoption: "卖家习惯权重", body: "输入", entry_id: "修改记录",
};

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.title) || "error " + status);
    this.status = status;
    this.code = (problem && problem.code) || (status ? "" : "network");
    this.title = (problem && problem.title) || "";
    this.detail = (problem && typeof problem.detail === "string") ? problem.detail : "";
    this.errors = (problem && Array.isArray(problem.errors)) ? problem.errors : [];
    this.problem = problem || {};
    this.retryAfter = null;
  }
}

const QX = {
  keyName: "qx_api_key",
  ApiError,

  key() { return sessionStorage.getItem(QX.keyName) || ""; },

  // Bind the key field and its buttons; `onSaved` runs with the key once one is set (now or later).
  bindKey(onSaved) {
    const input = document.getElementById("key");
    const button = document.getElementById("save-key");
    const forget = document.getElementById("forget-key");
    input.value = QX.key();
    const save = () => {
      const key = input.value.trim();
      if (!key) { QX.status("请先输入密钥。", true); input.focus(); return; }
      sessionStorage.setItem(QX.keyName, key);
      QX._me = null;
      onSaved(key);
    };
    button.addEventListener("click", save);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
    if (forget) forget.addEventListener("click", () => { sessionStorage.removeItem(QX.keyName); location.reload(); });
    if (QX.key()) onSaved(QX.key());
  },

  // fetch with the key; resolves to the parsed JSON, rejects with an ApiError (status 0: no answer).
  async api(method, path, body) {
    const headers = { "Authorization": "Bearer " + QX.key(), "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, null);
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      err.retryAfter = resp.headers.get("Retry-After");
      throw err;
    }
    return data;
  },

  // The calling key's role, seller and brand (GET /v1/me), once per key.
  async me() {
    if (!QX._me) QX._me = await QX.api("GET", "/v1/me");
    return QX._me;
  },

  // The bounds the API checks (GET /v1/console/limits), once per page.
  async limits() {
    if (!QX._limits) QX._limits = await QX.api("GET", "/v1/console/limits");
    return QX._limits;
  },

  // One short reason of a validation error, in Chinese.
  reason(text) {
    const t = String(text || "");
    let m;
    if (/coupon .*must be below the price/.test(t)) return "优惠券必须低于价格";
    if ((m = t.match(/less than or equal to ([\d.e+]+)/))) return "不能大于 " + QX.plain(Number(m[1]));
    if ((m = t.match(/greater than or equal to ([\d.e+]+)/))) return "不能小于 " + QX.plain(Number(m[1]));
    if ((m = t.match(/greater than ([\d.e+]+)/))) return "必须大于 " + QX.plain(Number(m[1]));
    if ((m = t.match(/less than ([\d.e+]+)/))) return "必须小于 " + QX.plain(Number(m[1]));
    if (/valid number|valid integer|parse/.test(t)) return "请填写数字";
    if (/at least 1 character|Field required|required|empty/.test(t)) return "必须填写";
    if (/at most \d+ character/.test(t)) return "太长了";
    if (/not of brand/.test(t)) return "不是本品牌的商品";
    if (/give at least one of/.test(t)) return "请至少调整佣金、优惠券、价格中的一项";
    if (/nothing to revert|already are those/.test(t)) return "线上权重已经是这次修改之前的样子，无需撤销";
    return "不符合要求";
  },

  // A short Chinese sentence for a failed call: what the code means, then which fields to fix.
  explain(err, names) {
    if (!(err instanceof ApiError)) return "页面出错了，请刷新后重试。";
    if (err.status === 0) return "连不上服务，请检查网络后重试。";
    let head = CODE_SENTENCES[err.code] || (err.title ? err.title + "。" : "出错了（" + err.status + "）。");
    if (err.code === "rate_limited" || err.code === "busy") {
      if (err.retryAfter) head = head.replace("片刻", ` ${err.retryAfter} 秒`);
    }
    const fields = QX.fieldErrors(err, names);
    if (fields.length) return head.replace(/[，。]?请按提示修改。$/, "：") + fields.map((f) => f.name + f.text).join("；") + "。";
    if (err.code === "invalid_request" && err.detail) return head.replace("请按提示修改。", QX.reason(err.detail) + "。");
    return head;
  },

  // [{field, name, text}] of a validation error (field = the last part of the API's dotted path).
  fieldErrors(err, names) {
    const all = Object.assign({}, FIELD_NAMES, names || {});
    return (err.errors || []).map((e) => {
      const parts = String(e.field || "body").split(".");
      const field = parts[parts.length - 1];
      const name = all[field] || all[parts[0]] || "输入";
      return { field, name, text: QX.reason(e.reason) };
    });
  },

  status(message, isError, id) {
    const el = document.getElementById(id || "status");
    if (!el) return;
    el.textContent = message;
    el.className = "status" + (isError ? " error" : "");
    el.setAttribute("role", isError ? "alert" : "status");
  },

  // Run a long call from a button: the button is disabled (no second send), and a progress line with the seconds
  // waited shows right beside it; `fn` gets nothing and returns a promise. Resolves to fn's value or undefined.
  async busy(button, progress, fn, label) {
    if (button.dataset.busy === "1") return undefined;
    button.dataset.busy = "1";
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    const started = Date.now();
    const text = label || "计算中";
    const tick = () => {
      const s = Math.floor((Date.now() - started) / 1000);
      progress.innerHTML = `<span class="spinner" aria-hidden="true"></span>${QX.esc(text)}…` +
        (s >= 2 ? ` 已等待 ${s} 秒` : "") + (s >= 8 ? "（一周的推荐要逐群重算，通常十几秒到一分钟）" : "");
    };
    progress.className = "progress";
    progress.setAttribute("role", "status");
    tick();
    const timer = setInterval(tick, 1000);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
      progress.className = "progress hidden";
      progress.textContent = "";
      button.dataset.busy = "";
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  },

  // Mark fields in error (red border + a line under each); `fields` maps API field names to input ids.
  markFields(errors, fields) {
    for (const el of document.querySelectorAll(".field-error")) el.remove();
    for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
    for (const e of errors) {
      const id = fields[e.field];
      const input = id && document.getElementById(id);
      if (!input) continue;
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      const line = document.createElement("div");
      line.className = "field-error";
      line.textContent = e.name + e.text;
      (input.closest(".field") || input.parentElement).append(line);
    }
  },

  clearMarks() { QX.markFields([], {}); for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid"); },

  // Check a number typed into an input against API bounds ({min, max, min_exclusive, max_exclusive});
  // returns [value|null, reason|null]; `scale` turns the typed unit into the API's (e.g. % -> share).
  checkNumber(raw, bounds, scale, required) {
    const s = String(raw === undefined || raw === null ? "" : raw).trim();
    if (s === "") return [null, required ? "必须填写" : null];
    const v = Number(s);
    if (!Number.isFinite(v)) return [null, "请填写数字"];
    const f = scale || 1, api = v * f;
    const b = bounds || {};
    const shown = (x) => QX.plain(x / f);
    if (b.min !== undefined && (b.min_exclusive ? api <= b.min : api < b.min)) {
      return [null, b.min_exclusive ? "必须大于 " + shown(b.min) : "不能小于 " + shown(b.min)];
    }
    if (b.max !== undefined && (b.max_exclusive ? api >= b.max : api > b.max)) {
      return [null, b.max_exclusive ? "必须小于 " + shown(b.max) : "不能大于 " + shown(b.max)];
    }
    return [api, null];
  },

  // Set an input's min/max attributes from API bounds (shown in the input's unit).
  applyBounds(input, bounds, scale) {
    const f = scale || 1;
    if (bounds.min !== undefined) input.min = String(bounds.min / f);
    if (bounds.max !== undefined) input.max = String(bounds.max / f);
  },

  num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "—";
    const d = digits === undefined ? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2) : digits;
    return Number(x).toLocaleString("zh-CN", { minimumFractionDigits: d, maximumFractionDigits: d });
  },

  // A number with as few decimals as it needs (at most 2): 0.75, 2.25, 3.
  plain(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return "—";
    return String(Math.round(Number(x) * 100) / 100);
  },

  yuan(x) { return "¥" + QX.num(x, Math.abs(x) >= 100 ? 0 : 2); },

  pct(x, digits) { return QX.num(100 * x, digits === undefined ? 1 : digits) + "%"; },

  signedPct(rel) { return (rel > 0 ? "+" : rel < 0 ? "−" : "") + QX.num(Math.abs(100 * rel), 1) + "%"; },

  signed(x, digits) { return (x > 0 ? "+" : x < 0 ? "−" : "") + QX.num(Math.abs(x), digits); },

  // "12月4日 11:26" in the viewer's time zone.
  when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  },

  ago(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, seconds);
    if (s < 90) return "刚刚";
    if (s < 3600) return Math.round(s / 60) + " 分钟前";
    if (s < 48 * 3600) return Math.round(s / 3600) + " 小时前";
    return Math.round(s / 86400) + " 天前";
  },

  // The name in an audit actor "key_id (name)"; the key id only when the key has no name.
  actorName(actor) {
    const m = String(actor || "").match(/^\S+ \((.*)\)$/);
    return m ? m[1] : "未署名的密钥";
  },

  // Escape text for innerHTML.
  esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  },

  debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  },

  // Ask for a reason in the page's <dialog id="reason-dialog">; resolves to the reason or null when cancelled.
  askReason(title, summaryHtml, maxLength) {
    const dialog = document.getElementById("reason-dialog");
    const text = document.getElementById("reason-text");
    const error = document.getElementById("reason-error");
    document.getElementById("reason-title").textContent = title;
    document.getElementById("reason-summary").innerHTML = summaryHtml;
    text.value = "";
    text.maxLength = maxLength || 200;
    error.textContent = "";
    return new Promise((resolve) => {
      const ok = document.getElementById("reason-ok"), cancel = document.getElementById("reason-cancel");
      const done = (value) => {
        ok.removeEventListener("click", onOk);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        dialog.close();
        resolve(value);
      };
      const onOk = (e) => {
        e.preventDefault();
        const v = text.value.trim();
        if (!v) { error.textContent = "请写下修改原因（会记入修改记录）。"; text.focus(); return; }
        done(v);
      };
      const onCancel = (e) => { e.preventDefault(); done(null); };
      ok.addEventListener("click", onOk);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      text.focus();
    });
  },
};
