// The Wharf console: a client of Wharf's public API, written by hand without a build step (docs/decisions.md).
// - The key the user signs in with is kept in sessionStorage only (gone when the tab closes), sent in the
//   Authorization header of each API call, never put in a URL, a log or the page.
// - Everything shown that came from the server is set as text (textContent), never parsed as HTML, and the page's
//   Content-Security-Policy allows no inline script: a file name or metadata value cannot become markup.
// - Every error answer is Wharf's error envelope; its message is what the user reads, never a stack trace.
// - Work that takes time shows progress: uploads and downloads count bytes, batches their request counts, and any
//   other call shows "Working…" in the status line while it runs.
'use strict';

(() => {
  /** Where the API lives: the page's own origin and path base (the console is served at <base>/console/). */
  const apiRoot = location.pathname.replace(/\/console(\/.*)?$/, '');
  const terminalBatchStatuses = new Set(['completed', 'failed', 'expired', 'cancelled']);
  const purposes = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];
  const batchEndpoints = ['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses'];
  /** Files above this size go through the Uploads API in parts of this size (a part may be at most 64 MB). */
  const partBytes = 32 * 1024 * 1024;
  const batchPollMs = 1000;

  const $ = (id) => document.getElementById(id);

  // ---- Session: the key, in this browser tab only ----------------------------------------------------------------

  const session = {
    get key() { return sessionStorage.getItem('wharf.console.key'); },
    get kind() { return sessionStorage.getItem('wharf.console.kind'); },
    start(key, kind) {
      sessionStorage.setItem('wharf.console.key', key);
      sessionStorage.setItem('wharf.console.kind', kind);
    },
    end() {
      sessionStorage.removeItem('wharf.console.key');
      sessionStorage.removeItem('wharf.console.kind');
    },
  };

  // ---- Elements --------------------------------------------------------------------------------------------------

  /** An element with attributes (on* are listeners, anything else an attribute or property) and children as text or nodes. */
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
      else if (name === 'class') element.className = value;
      else if (name in element && typeof value !== 'string') element[name] = value;
      else element.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function table(caption, headers, rows) {
    return h('div', { class: 'scroll' }, h('table', {},
      h('caption', { class: 'muted', hidden: true }, caption),
      h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col', class: /^(Bytes|Requests|Size)$/.test(text) ? 'num' : null }, text)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'Nothing here yet.')))));
  }

  /** A form control under its label (a label beside its control, not around it: its name is its text alone). */
  function field(text, control) {
    return h('div', { class: 'field' }, h('label', { for: control.id }, text), control);
  }

  function fields(pairs) {
    return h('dl', {}, pairs.flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, value === null || value === undefined ? '—' : value)]));
  }

  const formatBytes = (n) => {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let value = n, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
  };
  const formatTime = (seconds) => seconds ? new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—';
  const percent = (done, total) => total > 0 ? Math.floor((done / total) * 100) : 0;

  /** A progress bar with a line of text under it; update(done, total, text). */
  function progressBar(label) {
    const bar = h('progress', { 'aria-label': label, max: 100, value: 0 });
    const text = h('p', { 'aria-live': 'polite' });
    const element = h('div', { class: 'progress', hidden: true }, bar, text);
    return {
      element,
      /** Shows the bar (hidden until there is progress to show) at done of total, with a line of text. */
      update(done, total, message) {
        element.hidden = false;
        bar.max = Math.max(total, 1);
        bar.value = Math.min(done, bar.max);
        text.textContent = message;
      },
    };
  }

  // ---- Feedback: the status line and the alert ---------------------------------------------------------------------

  let pendingCalls = 0;
  function busy(delta) {
    pendingCalls += delta;
    $('busy').textContent = pendingCalls > 0 ? 'Working…' : '';
  }

  function showError(error) {
    $('alert').textContent = describe(error);
  }

  function clearError() {
    $('alert').textContent = '';
  }

  function describe(error) {
    if (!(error instanceof ApiError)) {
      return `The server could not be reached (${error && error.message ? error.message : 'network error'}).`;
    }
    const details = [error.param ? `field: ${error.param}` : null, error.code ? `code: ${error.code}` : null].filter(Boolean);
    return `${error.message}${details.length ? ` (${details.join(', ')})` : ''}`;
  }

  function notice(text) {
    $('busy').textContent = text;
    setTimeout(() => { if (pendingCalls === 0 && $('busy').textContent === text) $('busy').textContent = ''; }, 2500);
  }

  // ---- The API -----------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, code, param) {
      super(message);
      this.status = status;
      this.code = code || null;
      this.param = param || null;
    }
  }

  /** The error envelope's message, code and field; an answer that is not one still gets a clear message. */
  async function errorOf(status, statusText, bodyText) {
    try {
      const body = JSON.parse(bodyText);
      const error = body.error || {};
      return new ApiError(status, error.message || body.message || `The server answered ${status}.`, error.code, error.param);
    } catch {
      return new ApiError(status, `The server answered ${status}${statusText ? ' ' + statusText : ''}.`);
    }
  }

  /** A signed-out user, or a key the server no longer takes (revoked): back to the sign-in page, saying why. */
  function refused(error) {
    session.end();
    signInMessage = `Invalid key: ${error.message}`;
    if (location.hash !== '#/sign-in') location.hash = '#/sign-in';
    else render();
  }

  async function call(method, path, options = {}) {
    const headers = { Authorization: `Bearer ${options.key || session.key}` };
    let body;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    busy(+1);
    try {
      const response = await fetch(apiRoot + path, { method, headers, body, cache: 'no-store', credentials: 'omit' });
      if (!response.ok) {
        const error = await errorOf(response.status, response.statusText, await response.text());
        if (response.status === 401 && !options.key) {
          refused(error);
        }
        throw error;
      }
      return options.raw ? response : await response.json();
    } finally {
      busy(-1);
    }
  }

  /** POST of a form with XMLHttpRequest, for its upload progress events (fetch has none). */
  function send(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open('POST', apiRoot + path);
      request.setRequestHeader('Authorization', `Bearer ${session.key}`);
      request.upload.onprogress = (event) => onProgress(event.loaded);
      request.onload = async () => {
        if (request.status >= 200 && request.status < 300) {
          resolve(JSON.parse(request.responseText));
          return;
        }
        const error = await errorOf(request.status, request.statusText, request.responseText);
        if (request.status === 401) refused(error);
        reject(error);
      };
      request.onerror = () => reject(new Error('the connection failed'));
      request.onabort = () => reject(new Error('the upload was stopped'));
      request.send(form);
    });
  }

  /** Uploads a file: one request up to partBytes, else the Uploads API in parts; progress counts bytes sent. */
  async function uploadFile(file, purpose, progress) {
    const report = (sent) => progress.update(sent, file.size, `${file.name}: ${formatBytes(sent)} of ${formatBytes(file.size)} (${percent(sent, file.size)}%)`);
    report(0);
    if (file.size <= partBytes) {
      const form = new FormData();
      form.append('purpose', purpose);
      form.append('file', file, file.name);
      const created = await send('/v1/files', form, (loaded) => report(Math.min(loaded, file.size)));
      report(file.size);
      return created;
    }
    const upload = await call('POST', '/v1/uploads', { json: { filename: file.name, purpose, bytes: file.size, mime_type: file.type || 'application/octet-stream' } });
    try {
      const partIds = [];
      for (let offset = 0; offset < file.size; offset += partBytes) {
        const form = new FormData();
        form.append('data', file.slice(offset, offset + partBytes), file.name);
        const part = await send(`/v1/uploads/${encodeURIComponent(upload.id)}/parts`, form, (loaded) => report(offset + Math.min(loaded, partBytes)));
        partIds.push(part.id);
      }
      const completed = await call('POST', `/v1/uploads/${encodeURIComponent(upload.id)}/complete`, { json: { part_ids: partIds } });
      report(file.size);
      return completed.file;
    } catch (error) {
      call('POST', `/v1/uploads/${encodeURIComponent(upload.id)}/cancel`).catch(() => {});
      throw error;
    }
  }

  /** Downloads a file's content with a byte count, then hands it to the browser to save under its name. */
  async function downloadFile(fileId, filename, progress) {
    const response = await call('GET', `/v1/files/${encodeURIComponent(fileId)}/content`, { raw: true });
    const total = Number(response.headers.get('Content-Length')) || 0;
    const reader = response.body.getReader();
    const chunks = [];
    let received = 0;
    progress.update(0, total, `${filename}: starting…`);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      progress.update(received, total, `${filename}: ${formatBytes(received)} of ${formatBytes(total)} (${percent(received, total)}%)`);
    }
    progress.update(received, total || received, `${filename}: downloaded ${formatBytes(received)}.`);
    const url = URL.createObjectURL(new Blob(chunks, { type: response.headers.get('Content-Type') || 'application/octet-stream' }));
    const link = h('a', { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  // ---- Routing -----------------------------------------------------------------------------------------------------

  let signInMessage = '';
  /** Bumped on every render: a view's timers and late answers check it and stop once another view is shown. */
  let generation = 0;

  const workspaceViews = [['#/files', 'Files'], ['#/batches', 'Batches'], ['#/providers', 'Providers']];
  const adminViews = [['#/workspaces', 'Workspaces'], ['#/providers', 'Providers']];

  function navigation() {
    const nav = $('nav');
    const signedIn = Boolean(session.key);
    nav.hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
    $('who').textContent = signedIn ? (session.kind === 'admin' ? 'Signed in with the admin key' : 'Signed in with a workspace key') : '';
    nav.replaceChildren(...(session.kind === 'admin' ? adminViews : workspaceViews).map(([href, text]) =>
      h('a', { href, 'aria-current': location.hash.startsWith(href) ? 'page' : null }, text)));
  }

  async function render() {
    const current = ++generation;
    const isCurrent = () => current === generation;
    const view = $('view');
    clearError();
    const [path, id] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    if (!session.key && path !== 'sign-in') {
      location.hash = '#/sign-in';
      return;
    }
    navigation();
    const views = session.kind === 'admin'
      ? { workspaces: id ? () => workspaceView(id, isCurrent) : () => workspacesView(isCurrent), providers: () => adminProvidersView() }
      : {
        files: id ? () => fileView(id, isCurrent) : () => filesView(isCurrent),
        batches: id ? () => batchView(id, isCurrent) : () => batchesView(isCurrent),
        providers: () => providersView(isCurrent),
      };
    let show = path === 'sign-in' ? signInView : views[path];
    if (!show) {
      location.hash = session.kind === 'admin' ? '#/workspaces' : '#/files';
      return;
    }
    view.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const content = await show(isCurrent);
      if (isCurrent()) view.replaceChildren(content);
    } catch (error) {
      if (!isCurrent()) return;
      view.replaceChildren();
      showError(error);
    }
  }

  // ---- Sign in -----------------------------------------------------------------------------------------------------

  function signInView() {
    const key = h('input', { id: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
    const workspaceKind = h('input', { type: 'radio', name: 'kind', value: 'workspace', checked: true });
    const adminKind = h('input', { type: 'radio', name: 'kind', value: 'admin' });
    const button = h('button', { type: 'submit' }, 'Sign in');
    const message = h('p', { class: 'alert', role: 'alert' }, signInMessage);
    signInMessage = '';
    const form = h('form', {
      async onsubmit(event) {
        event.preventDefault();
        const kind = adminKind.checked ? 'admin' : 'workspace';
        const secret = key.value.trim();
        button.disabled = true;
        message.textContent = '';
        try {
          // A call the key must be allowed to make, and nothing else: it proves the key before it is kept.
          await call('GET', kind === 'admin' ? '/admin/workspaces?limit=1' : '/v1/providers', { key: secret });
          session.start(secret, kind);
          location.hash = kind === 'admin' ? '#/workspaces' : '#/files';
        } catch (error) {
          message.textContent = !(error instanceof ApiError) ? describe(error)
            : error.status === 401 ? `Invalid key: ${error.message}`
              : error.status === 404 && kind === 'admin' ? 'This server has no admin API (Wharf:Auth:AdminKey is not set).'
                : describe(error);
        } finally {
          button.disabled = false;
        }
      },
    },
    field('API key', key),
    h('fieldset', {}, h('legend', {}, 'Key type'),
      h('label', { class: 'inline' }, workspaceKind, 'Workspace key'),
      h('label', { class: 'inline' }, adminKind, 'Admin key')),
    button,
    h('p', { class: 'muted' }, 'The key stays in this browser tab only (session storage) and is sent to this server alone.'));
    return h('section', { class: 'signin' }, h('h1', {}, 'Sign in'), form, message);
  }

  // ---- Files -------------------------------------------------------------------------------------------------------

  const fileQuery = { purpose: '', status: '', provider: '', collection: '', metadata: '', order: 'desc', limit: '20', cursors: [] };

  function fileListPath() {
    const query = new URLSearchParams();
    for (const name of ['purpose', 'status', 'provider', 'collection', 'order', 'limit']) {
      if (fileQuery[name]) query.set(name, fileQuery[name]);
    }
    for (const pair of fileQuery.metadata.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [key, ...value] = pair.split('=');
      query.append(`metadata.${key.trim()}`, value.join('=').trim());
    }
    const after = fileQuery.cursors[fileQuery.cursors.length - 1];
    if (after) query.set('after', after);
    return `/v1/files?${query}`;
  }

  async function filesView(isCurrent) {
    const list = h('div', {});
    const refresh = async () => {
      const page = await call('GET', fileListPath());
      if (!isCurrent()) return;
      list.replaceChildren(fileTable(page, refresh));
    };

    const purpose = h('select', { id: 'upload-purpose' }, purposes.map((p) => h('option', { value: p, selected: p === 'batch' }, p)));
    const input = h('input', { id: 'upload-file', type: 'file', multiple: true });
    const progress = progressBar('Upload progress');
    const uploadAll = async (files) => {
      clearError();
      for (const file of files) {
        try {
          const created = await uploadFile(file, purpose.value, progress);
          notice(`Uploaded ${created.filename} as ${created.id}.`);
        } catch (error) {
          showError(error);
          break;
        }
      }
      input.value = '';
      fileQuery.cursors = [];
      await refresh().catch(showError);
    };
    input.addEventListener('change', () => uploadAll([...input.files]));
    const drop = h('div', {
      class: 'drop', role: 'region', 'aria-label': 'Drop zone',
      ondragover(event) { event.preventDefault(); drop.classList.add('over'); },
      ondragleave() { drop.classList.remove('over'); },
      ondrop(event) { event.preventDefault(); drop.classList.remove('over'); uploadAll([...event.dataTransfer.files]); },
    }, 'Drop files here, or ', h('label', { class: 'inline', for: 'upload-file' }, 'choose files', input));

    const filter = (name, label, control) => {
      control.id = `filter-${name}`;
      control.value = fileQuery[name];
      control.addEventListener('change', () => { fileQuery[name] = control.value; });
      return field(label, control);
    };
    const filters = h('form', {
      class: 'row', role: 'search', 'aria-label': 'File filters',
      async onsubmit(event) {
        event.preventDefault();
        clearError();
        fileQuery.cursors = [];
        await refresh().catch(showError);
      },
    },
    filter('purpose', 'Purpose', h('select', {}, h('option', { value: '' }, 'any'), [...purposes, 'batch_output'].map((p) => h('option', { value: p }, p)))),
    filter('status', 'Status', h('select', {}, h('option', { value: '' }, 'any'), ['uploaded', 'processed', 'error', 'processing'].map((s) => h('option', { value: s }, s)))),
    filter('provider', 'Provider', h('input', { type: 'text', size: 10 })),
    filter('collection', 'Collection', h('input', { type: 'text', size: 10 })),
    filter('metadata', 'Metadata (key=value, …)', h('input', { type: 'text', size: 18 })),
    filter('order', 'Order', h('select', {}, h('option', { value: 'desc' }, 'newest first'), h('option', { value: 'asc' }, 'oldest first'))),
    filter('limit', 'Per page', h('input', { type: 'text', inputmode: 'numeric', size: 5 })),
    h('button', { type: 'submit' }, 'Apply filters'));

    const page = await call('GET', fileListPath());
    list.replaceChildren(fileTable(page, refresh));
    return h('div', {},
      h('h1', {}, 'Files'),
      h('section', { 'aria-label': 'Upload' }, h('h2', {}, 'Upload'), h('div', { class: 'row' }, field('Purpose', purpose)), drop, progress.element),
      h('section', { 'aria-label': 'File list' }, h('h2', {}, 'Files'), filters, list));
  }

  function fileTable(page, refresh) {
    const downloads = progressBar('Download progress');
    const rows = page.data.map((file) => h('tr', {},
      h('td', {}, h('a', { href: `#/files/${encodeURIComponent(file.id)}` }, file.filename)),
      h('td', { class: 'id' }, file.id),
      h('td', {}, file.purpose),
      h('td', { class: 'num' }, formatBytes(file.bytes)),
      h('td', {}, file.status),
      h('td', {}, formatTime(file.created_at)),
      h('td', { class: 'actions' },
        h('button', {
          type: 'button', class: 'secondary', 'aria-label': `Download ${file.filename}`,
          async onclick() { await downloadFile(file.id, file.filename, downloads).catch(showError); },
        }, 'Download'), ' ',
        h('button', {
          type: 'button', class: 'danger', 'aria-label': `Delete ${file.filename}`,
          async onclick() {
            if (!confirm(`Delete ${file.filename} (${file.id})?`)) return;
            try {
              await call('DELETE', `/v1/files/${encodeURIComponent(file.id)}`);
              notice(`Deleted ${file.id}.`);
              await refresh();
            } catch (error) { showError(error); }
          },
        }, 'Delete'))));
    const previous = h('button', {
      type: 'button', class: 'secondary', disabled: fileQuery.cursors.length === 0,
      async onclick() { fileQuery.cursors.pop(); await refresh().catch(showError); },
    }, 'Previous page');
    const next = h('button', {
      type: 'button', class: 'secondary', disabled: !page.has_more,
      async onclick() { fileQuery.cursors.push(page.last_id); await refresh().catch(showError); },
    }, 'Next page');
    return h('div', {},
      table('Files', ['Name', 'ID', 'Purpose', 'Bytes', 'Status', 'Created', ''], rows),
      h('div', { class: 'pager' }, previous, next, h('span', { class: 'muted' }, `Page ${fileQuery.cursors.length + 1}, ${page.data.length} file(s)`)),
      downloads.element);
  }

  async function fileView(id) {
    const file = await call('GET', `/v1/files/${encodeURIComponent(id)}`);
    const progress = progressBar('Download progress');
    const metadata = Object.entries(file.metadata || {});
    return h('div', {},
      h('p', {}, h('a', { href: '#/files' }, '← Files')),
      h('h1', {}, file.filename),
      h('section', { 'aria-label': 'File details' }, fields([
        ['ID', h('span', { class: 'id' }, file.id)], ['Purpose', file.purpose], ['Size', formatBytes(file.bytes)],
        ['Status', file.status], ['Status details', file.status_details], ['Created', formatTime(file.created_at)],
        ['Expires', formatTime(file.expires_at)], ['Provider', file.provider], ['Collection', file.collection],
        ['SHA-256', file.sha256 ? h('span', { class: 'id' }, file.sha256) : null],
        ['Processing', file.processing ? file.processing.status : null],
      ])),
      h('section', { 'aria-label': 'Metadata' }, h('h2', {}, 'Metadata'),
        table('Metadata', ['Key', 'Value'], metadata.map(([key, value]) => h('tr', {}, h('td', {}, key), h('td', {}, value))))),
      h('section', { 'aria-label': 'Actions' }, h('div', { class: 'row' },
        h('button', { type: 'button', async onclick() { await downloadFile(file.id, file.filename, progress).catch(showError); } }, 'Download'),
        h('button', {
          type: 'button', class: 'danger',
          async onclick() {
            if (!confirm(`Delete ${file.filename} (${file.id})?`)) return;
            try {
              await call('DELETE', `/v1/files/${encodeURIComponent(file.id)}`);
              location.hash = '#/files';
            } catch (error) { showError(error); }
          },
        }, 'Delete')), progress.element));
  }

  // ---- Batches -----------------------------------------------------------------------------------------------------

  const doneCount = (counts) => (counts.completed || 0) + (counts.failed || 0);

  async function batchesView(isCurrent) {
    const cursors = [];
    const list = h('div', {});
    const refresh = async () => {
      const after = cursors[cursors.length - 1];
      const page = await call('GET', `/v1/batches?limit=20${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      if (!isCurrent()) return;
      const rows = page.data.map((batch) => h('tr', {},
        h('td', {}, h('a', { href: `#/batches/${encodeURIComponent(batch.id)}`, class: 'id' }, batch.id)),
        h('td', { class: `status-${batch.status}` }, batch.status),
        h('td', {}, batch.endpoint),
        h('td', { class: 'num' }, `${doneCount(batch.request_counts)} / ${batch.request_counts.total}`),
        h('td', {}, formatTime(batch.created_at))));
      list.replaceChildren(
        table('Batches', ['ID', 'Status', 'Endpoint', 'Requests', 'Created'], rows),
        h('div', { class: 'pager' },
          h('button', { type: 'button', class: 'secondary', disabled: cursors.length === 0, async onclick() { cursors.pop(); await refresh().catch(showError); } }, 'Previous page'),
          h('button', { type: 'button', class: 'secondary', disabled: !page.has_more, async onclick() { cursors.push(page.last_id); await refresh().catch(showError); } }, 'Next page')));
    };

    const inputs = await call('GET', '/v1/files?purpose=batch&limit=100');
    const inputFile = h('select', { id: 'batch-input', required: true },
      inputs.data.length ? inputs.data.map((f) => h('option', { value: f.id }, `${f.filename} (${f.id})`)) : h('option', { value: '' }, 'no file with purpose "batch" yet'));
    const endpoint = h('select', { id: 'batch-endpoint' }, batchEndpoints.map((e) => h('option', { value: e }, e)));
    const create = h('form', {
      class: 'row', 'aria-label': 'Create a batch',
      async onsubmit(event) {
        event.preventDefault();
        clearError();
        try {
          const batch = await call('POST', '/v1/batches', { json: { input_file_id: inputFile.value, endpoint: endpoint.value, completion_window: '24h' } });
          location.hash = `#/batches/${encodeURIComponent(batch.id)}`;
        } catch (error) { showError(error); }
      },
    },
    field('Input file', inputFile),
    field('Endpoint', endpoint),
    h('button', { type: 'submit' }, 'Create batch'));

    await refresh();
    return h('div', {},
      h('h1', {}, 'Batches'),
      h('section', { 'aria-label': 'New batch' }, h('h2', {}, 'New batch'),
        h('p', { class: 'muted' }, 'A JSONL file uploaded with purpose "batch", one request per line.'), create),
      h('section', { 'aria-label': 'Batch list' }, h('h2', {}, 'Batches'), list));
  }

  async function batchView(id, isCurrent) {
    const details = h('div', {});
    const progress = progressBar('Batch progress');
    const downloads = progressBar('Download progress');
    const actions = h('div', { class: 'row' });
    const errors = h('div', {});
    const title = h('h1', {}, `Batch ${id}`);

    const show = (batch) => {
      const counts = batch.request_counts;
      progress.update(doneCount(counts), counts.total,
        `${batch.status}: ${counts.completed} completed, ${counts.failed} failed of ${counts.total} requests (${percent(doneCount(counts), counts.total)}%)`);
      details.replaceChildren(fields([
        ['Status', h('span', { class: `status-${batch.status}`, 'aria-label': 'Batch status' }, batch.status)],
        ['Endpoint', batch.endpoint], ['Execution', batch.execution], ['Provider', batch.provider],
        ['Input file', h('a', { href: `#/files/${encodeURIComponent(batch.input_file_id)}`, class: 'id' }, batch.input_file_id)],
        ['Output file', batch.output_file_id ? h('span', { class: 'id' }, batch.output_file_id) : null],
        ['Error file', batch.error_file_id ? h('span', { class: 'id' }, batch.error_file_id) : null],
        ['Created', formatTime(batch.created_at)], ['Completed', formatTime(batch.completed_at)],
        ['Tokens', batch.usage ? String(batch.usage.total_tokens) : null],
      ]));
      const download = (fileId, label) => h('button', {
        type: 'button', class: 'secondary',
        async onclick() { await downloadFile(fileId, `${batch.id}-${label.toLowerCase().replace(/ /g, '-')}.jsonl`, downloads).catch(showError); },
      }, `Download ${label.toLowerCase()}`);
      actions.replaceChildren(...[
        batch.output_file_id ? download(batch.output_file_id, 'Output') : null,
        batch.error_file_id ? download(batch.error_file_id, 'Errors') : null,
        terminalBatchStatuses.has(batch.status) || batch.status === 'cancelling' ? null : h('button', {
          type: 'button', class: 'danger',
          async onclick() {
            try { show(await call('POST', `/v1/batches/${encodeURIComponent(batch.id)}/cancel`)); } catch (error) { showError(error); }
          },
        }, 'Cancel batch'),
      ].filter(Boolean));
      const list = batch.errors && batch.errors.data ? batch.errors.data : [];
      errors.replaceChildren(...(list.length ? [h('section', { 'aria-label': 'Batch errors' }, h('h2', {}, 'Errors'),
        table('Errors', ['Line', 'Code', 'Message'], list.map((e) => h('tr', {}, h('td', {}, e.line ?? '—'), h('td', {}, e.code), h('td', {}, e.message)))))] : []));
    };

    // Polled once a second while the batch has not ended, so that its counts move while it runs; the poll stops when
    // the batch ends or the user leaves this page. A failed poll (the network, a restarting server) is shown and the
    // poll goes on, its message cleared by the next answer; only a refused key (401, back to sign-in) stops it.
    let pollError = null;
    const schedule = (batch) => {
      if (!terminalBatchStatuses.has(batch.status)) setTimeout(poll, batchPollMs);
    };
    const poll = async () => {
      if (!isCurrent()) return;
      try {
        const batch = await call('GET', `/v1/batches/${encodeURIComponent(id)}`);
        if (!isCurrent()) return;
        if (pollError !== null && $('alert').textContent === pollError) clearError();
        pollError = null;
        show(batch);
        schedule(batch);
      } catch (error) {
        if (!isCurrent() || (error instanceof ApiError && error.status === 401)) return;
        showError(error);
        pollError = $('alert').textContent;
        setTimeout(poll, batchPollMs);
      }
    };
    const first = await call('GET', `/v1/batches/${encodeURIComponent(id)}`);
    show(first);
    schedule(first);
    return h('div', {},
      h('p', {}, h('a', { href: '#/batches' }, '← Batches')),
      title,
      h('section', { 'aria-label': 'Batch progress' }, progress.element, actions, downloads.element),
      h('section', { 'aria-label': 'Batch details' }, details),
      errors);
  }

  // ---- Providers ---------------------------------------------------------------------------------------------------

  /** A provider's type, capabilities and models, as GET /v1/providers and GET /admin/providers give them. */
  function providerFields(provider) {
    return fields([
      ['Type', provider.type],
      ['Capabilities', h('span', { class: 'chips' }, provider.capabilities.map((c) => h('span', {}, c)))],
      ['Models', provider.models ? provider.models.join(', ') : 'any'],
    ]);
  }

  /** The providers a workspace key may use. Their recent outcomes are the operator's alone (they hold every workspace's calls). */
  async function providersView() {
    const providers = await call('GET', '/v1/providers');
    return h('div', {}, h('h1', {}, 'Providers'),
      h('p', { class: 'muted' }, 'The providers this key may use.'),
      providers.data.map((provider) => h('section', { 'aria-label': `Provider ${provider.id}` }, h('h2', {}, provider.id), providerFields(provider))));
  }

  /** Every configured provider, with this server node's most recent upstream calls to it (the admin API). */
  async function adminProvidersView() {
    const providers = await call('GET', '/admin/providers');
    const sections = await Promise.all(providers.data.map(async (provider) => {
      const outcomes = await call('GET', `/admin/providers/${encodeURIComponent(provider.id)}/outcomes`);
      return h('section', { 'aria-label': `Provider ${provider.id}` },
        h('h2', {}, provider.id),
        providerFields(provider),
        h('h3', {}, 'Recent upstream outcomes'),
        table(`Recent outcomes of ${provider.id}`, ['Time', 'Operation', 'Outcome', 'Status', 'Duration'],
          outcomes.data.map((o) => h('tr', {},
            h('td', {}, formatTime(o.at)),
            h('td', {}, o.operation),
            h('td', { class: o.outcome === 'ok' ? 'outcome-ok' : 'outcome-bad' }, o.outcome),
            h('td', {}, o.status ?? '—'),
            h('td', { class: 'num' }, `${o.duration_ms} ms`)))));
    }));
    return h('div', {}, h('h1', {}, 'Providers'),
      h('p', { class: 'muted' }, 'Every configured provider. Outcomes are this server node\'s most recent upstream calls of all workspaces, newest first.'),
      sections);
  }

  // ---- Admin: workspaces and keys ----------------------------------------------------------------------------------

  async function workspacesView(isCurrent) {
    const list = h('div', {});
    const cursors = [];
    const refresh = async () => {
      const after = cursors[cursors.length - 1];
      const page = await call('GET', `/admin/workspaces?limit=50${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      if (!isCurrent()) return;
      list.replaceChildren(
        table('Workspaces', ['Name', 'ID', 'Storage used', 'Quota', 'Rate limit', 'Created'], page.data.map((w) => h('tr', {},
          h('td', {}, h('a', { href: `#/workspaces/${encodeURIComponent(w.id)}` }, w.name)),
          h('td', { class: 'id' }, w.id),
          h('td', {}, formatBytes(w.storage_usage_bytes)),
          h('td', {}, w.storage_quota_bytes === null ? 'none' : formatBytes(w.storage_quota_bytes)),
          h('td', {}, w.rate_limit_rpm === null ? 'default' : `${w.rate_limit_rpm}/min`),
          h('td', {}, formatTime(w.created_at))))),
        h('div', { class: 'pager' },
          h('button', { type: 'button', class: 'secondary', disabled: cursors.length === 0, async onclick() { cursors.pop(); await refresh().catch(showError); } }, 'Previous page'),
          h('button', { type: 'button', class: 'secondary', disabled: !page.has_more, async onclick() { cursors.push(page.last_id); await refresh().catch(showError); } }, 'Next page')));
    };
    const name = h('input', { id: 'workspace-name', type: 'text', required: true });
    const create = h('form', {
      class: 'row', 'aria-label': 'Create a workspace',
      async onsubmit(event) {
        event.preventDefault();
        clearError();
        try {
          const workspace = await call('POST', '/admin/workspaces', { json: { name: name.value } });
          location.hash = `#/workspaces/${encodeURIComponent(workspace.id)}`;
        } catch (error) { showError(error); }
      },
    }, field('Name', name), h('button', { type: 'submit' }, 'Create workspace'));
    await refresh();
    return h('div', {}, h('h1', {}, 'Workspaces'),
      h('section', { 'aria-label': 'New workspace' }, h('h2', {}, 'New workspace'), create),
      h('section', { 'aria-label': 'Workspace list' }, h('h2', {}, 'Workspaces'), list));
  }

  async function workspaceView(id, isCurrent) {
    const workspace = await call('GET', `/admin/workspaces/${encodeURIComponent(id)}`);
    const keys = h('div', {});
    const secret = h('div', {});
    const refresh = async () => {
      const page = await call('GET', `/admin/workspaces/${encodeURIComponent(id)}/keys`);
      if (!isCurrent()) return;
      keys.replaceChildren(table('Keys', ['Name', 'ID', 'Prefix', 'Scopes', 'Created', 'Last used', ''], page.data.map((key) => h('tr', {},
        h('td', {}, key.name),
        h('td', { class: 'id' }, key.id),
        h('td', { class: 'id' }, key.prefix),
        h('td', { class: 'chips' }, key.scopes.map((s) => h('span', {}, s))),
        h('td', {}, formatTime(key.created_at)),
        h('td', {}, formatTime(key.last_used_at)),
        h('td', { class: 'actions' }, h('button', {
          type: 'button', class: 'danger', 'aria-label': `Revoke ${key.name}`,
          async onclick() {
            if (!confirm(`Revoke the key ${key.name} (${key.id})? Requests with it are refused at once.`)) return;
            try {
              await call('DELETE', `/admin/keys/${encodeURIComponent(key.id)}`);
              notice(`Revoked ${key.id}.`);
              await refresh();
            } catch (error) { showError(error); }
          },
        }, 'Revoke'))))));
    };
    const name = h('input', { id: 'key-name', type: 'text', required: true });
    const create = h('form', {
      class: 'row', 'aria-label': 'Create a key',
      async onsubmit(event) {
        event.preventDefault();
        clearError();
        try {
          const key = await call('POST', `/admin/workspaces/${encodeURIComponent(id)}/keys`, { json: { name: name.value } });
          name.value = '';
          // The secret is in this answer only: shown once, and gone from the page when the user says it is saved.
          secret.replaceChildren(h('section', { class: 'secret', 'aria-label': 'New key' },
            h('h2', {}, `Key ${key.name} created`),
            h('p', {}, 'Copy this secret now: it is shown only this once.'),
            h('output', { 'aria-label': 'New key secret' }, key.key),
            h('button', { type: 'button', onclick() { secret.replaceChildren(); } }, 'I have saved it')));
          await refresh();
        } catch (error) { showError(error); }
      },
    }, field('Key name', name), h('button', { type: 'submit' }, 'Create key'));
    await refresh();
    return h('div', {},
      h('p', {}, h('a', { href: '#/workspaces' }, '← Workspaces')),
      h('h1', {}, `Workspace ${workspace.name}`),
      h('section', { 'aria-label': 'Workspace details' }, fields([
        ['ID', h('span', { class: 'id' }, workspace.id)], ['Storage used', formatBytes(workspace.storage_usage_bytes)],
        ['Storage quota', workspace.storage_quota_bytes === null ? 'none' : formatBytes(workspace.storage_quota_bytes)],
        ['Rate limit', workspace.rate_limit_rpm === null ? 'default' : `${workspace.rate_limit_rpm}/min`],
        ['Allowed providers', workspace.allowed_providers ? workspace.allowed_providers.join(', ') : 'all'],
        ['Webhook URL', workspace.webhook_url], ['Created', formatTime(workspace.created_at)],
      ])),
      secret,
      h('section', { 'aria-label': 'Keys' }, h('h2', {}, 'Keys'), create, keys));
  }

  // ---- Start -------------------------------------------------------------------------------------------------------

  $('sign-out').addEventListener('click', () => {
    session.end();
    location.hash = '#/sign-in';
  });
  window.addEventListener('hashchange', render);
  render();
})();
