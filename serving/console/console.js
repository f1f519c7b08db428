// 圈选控制台: the API key, calls to the API, and number formatting shared by both pages.
"use strict";

const QX = {
  keyName: "qx_api_key",

  key() { return sessionStorage.getItem(QX.keyName) || ""; },

  // Bind the key field and its save button; `onSaved` runs with the key once one is set.
  bindKey(onSaved) {
    const input = document.getElementById("key");
    const button = document.getElementById("save-key");
    input.value = QX.key();
    const save = () => {
      sessionStorage.setItem(QX.keyName, input.value.trim());
      onSaved(input.value.trim());
    };
    button.addEventListener("click", save);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
    if (QX.key()) onSaved(QX.key());
  },

  // fetch with the key; resolves to the parsed JSON, rejects with {status, detail}.
  async api(method, path, body) {
    const headers = { "Authorization": "Bearer " + QX.key() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    if (!resp.ok) {
      const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : resp.statusText;
      throw { status: resp.status, detail };
    }
    return data;
  },

  // A message for a failed call, in Chinese.
  explain(err) {
    const reasons = {
      401: "密钥无效或已吊销，请重新输入",
      403: "没有权限：此密钥不能查看或修改这里的内容",
      404: "没有找到",
      422: "输入有误",
      429: "请求太频繁，请稍后再试",
      503: "服务还没有加载今天的数据",
    };
    const head = reasons[err.status] || ("出错了（" + (err.status || "网络") + "）");
    return head + (err.detail ? "：" + err.detail : "");
  },

  status(message, isError) {
    const el = document.getElementById("status");
    el.textContent = message;
    el.className = "status" + (isError ? " error" : "");
  },

  num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "—";
    const d = digits === undefined ? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2) : digits;
    return Number(x).toLocaleString("zh-CN", { minimumFractionDigits: d, maximumFractionDigits: d });
  },

  yuan(x) { return "¥" + QX.num(x, Math.abs(x) >= 100 ? 0 : 2); },

  pct(x) { return QX.num(100 * x, 1) + "%"; },

  // Escape text for innerHTML.
  esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  },

  debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  },
};
