using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Telemetry;

namespace Wharf.Core.Batches;

/// <summary>
/// The result lines of one batch run for one of its two files, gathered into chunks: lines are appended as they
/// finish (under a lock, a few microseconds each), and a chunk is written when it holds <c>ChunkLines</c> lines or
/// when the run's timer says so: staged and committed to the blob store as a <c>part_</c> blob, then recorded in the
/// catalog with its input lines, counts and usage in one transaction. Only then do its lines count as done. One
/// chunk fills while the previous one is written, so at most two are in memory.
/// </summary>
internal sealed class ResultChunks : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private readonly BatchRecord _batch;
    private readonly string _owner;
    private readonly BatchFileKind _kind;
    private readonly int _chunkLines;
    private readonly int _chunkBytes;
    private readonly IBatchCatalog _catalog;
    private readonly IBlobStore _blobs;
    private readonly IdGenerator _ids;
    private readonly TimeProvider _time;
    private readonly WharfMetrics? _metrics;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Utf8JsonWriter _json;
    private Pending _filling = new();
    private Pending _spare = new();

    public ResultChunks(
        BatchRecord batch, string owner, BatchFileKind kind, int chunkLines, int chunkBytes, IBatchCatalog catalog, IBlobStore blobs, IdGenerator ids, TimeProvider time,
        WharfMetrics? metrics = null)
    {
        _metrics = metrics;
        _chunkBytes = chunkBytes;
        _batch = batch;
        _owner = owner;
        _kind = kind;
        _chunkLines = chunkLines;
        _catalog = catalog;
        _blobs = blobs;
        _ids = ids;
        _time = time;
        _json = new Utf8JsonWriter(_filling.Bytes, WriterOptions);
    }

    /// <summary>Set once a chunk could not be recorded because the lease was lost: nothing more is written.</summary>
    public bool LeaseLost { get; private set; }

    /// <summary>Lines appended and not yet in a recorded chunk.</summary>
    public int Unwritten
    {
        get
        {
            lock (_gate)
            {
                return _filling.Lines.Count + _spare.Lines.Count;
            }
        }
    }

    /// <summary>
    /// A line's answer (the output file): <c>{"id","custom_id","response":{"status_code","request_id","body"},"error":null}</c>.
    /// <paramref name="answer"/> is one JSON value; one spread over several lines is written on one. True when the
    /// chunk is full (the caller then writes it).
    /// </summary>
    public bool AppendAnswer(int line, string customId, int status, ReadOnlySpan<byte> answer, BatchUsage usage)
    {
        // The answer was checked to be one JSON value, so a CR or LF in it can only be whitespace between tokens (one
        // in a string is escaped): written as a space, the answer is the same JSON on one line, at any depth.
        byte[]? oneLine = null;
        if (answer.IndexOfAny((byte)'\n', (byte)'\r') >= 0)
        {
            oneLine = ArrayPool<byte>.Shared.Rent(answer.Length);
            answer.CopyTo(oneLine);
            var copy = oneLine.AsSpan(0, answer.Length);
            copy.Replace((byte)'\n', (byte)' ');
            copy.Replace((byte)'\r', (byte)' ');
            answer = copy;
        }
        try
        {
            lock (_gate)
            {
                Start(customId);
                _json.WriteStartObject("response");
                _json.WriteNumber("status_code", status);
                _json.WriteString("request_id", RequestId());
                _json.WritePropertyName("body");
                _json.WriteRawValue(answer, skipInputValidation: true);
                _json.WriteEndObject();
                _json.WriteNull("error");
                return End(line, usage);
            }
        }
        finally
        {
            if (oneLine is not null)
            {
                ArrayPool<byte>.Shared.Return(oneLine);
            }
        }
    }

    /// <summary>
    /// A line an upstream answered with an error (the error file): <c>response</c> with the upstream's final status and
    /// OpenAI's error body (<c>message</c>, <c>type</c>, <c>param</c>, <c>code</c> as the upstream gave them, as far as
    /// they were read), <c>error: null</c>.
    /// </summary>
    public bool AppendUpstreamError(int line, string customId, int status, string message, string type, string? param, string? code)
    {
        lock (_gate)
        {
            Start(customId);
            _json.WriteStartObject("response");
            _json.WriteNumber("status_code", status);
            _json.WriteString("request_id", RequestId());
            _json.WriteStartObject("body");
            _json.WriteStartObject("error");
            _json.WriteString("message", message);
            _json.WriteString("type", type);
            WriteNullable("param", param);
            WriteNullable("code", code);
            _json.WriteEndObject();
            _json.WriteEndObject();
            _json.WriteEndObject();
            _json.WriteNull("error");
            return End(line, BatchUsage.None);
        }
    }

    /// <summary>A line no upstream answered (the error file): <c>response: null</c>, <c>error: {code, message}</c>.</summary>
    public bool AppendFailure(int line, string customId, string code, string message)
    {
        lock (_gate)
        {
            Start(customId);
            _json.WriteNull("response");
            _json.WriteStartObject("error");
            _json.WriteString("code", code);
            _json.WriteString("message", message);
            _json.WriteEndObject();
            return End(line, BatchUsage.None);
        }
    }

    private void Start(string customId)
    {
        _json.Reset(_filling.Bytes);
        _json.WriteStartObject();
        _json.WriteString("id", WharfIds.Hex(WharfIds.BatchRequestPrefix, _ids.Next()));
        _json.WriteString("custom_id", customId);
    }

    private bool End(int line, BatchUsage usage)
    {
        _json.WriteEndObject();
        _json.Flush();
        _filling.Bytes.Write("\n"u8);
        _filling.Lines.Add(line);
        _filling.Usage = _filling.Usage.Add(usage);
        return _filling.Lines.Count >= _chunkLines || _filling.Bytes.WrittenCount >= _chunkBytes;
    }

    private void WriteNullable(string name, string? value)
    {
        if (value is null)
        {
            _json.WriteNull(name);
        }
        else
        {
            _json.WriteString(name, value);
        }
    }

    private string RequestId() => WharfIds.Hex("req_", _ids.Next());

    /// <summary>
    /// Writes what is appended as one chunk (nothing when nothing is): staged, committed, recorded. Returns false when
    /// the lease was lost (the chunk is not recorded and its lines are not done). Store failures are thrown.
    /// </summary>
    public async Task<bool> FlushAsync(CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken);
        try
        {
            if (LeaseLost)
            {
                return false;
            }
            Pending taken;
            lock (_gate)
            {
                if (_filling.Lines.Count == 0)
                {
                    return true;
                }
                taken = _filling;
                _filling = _spare;
                _spare = taken;
            }
            try
            {
                return await WriteAsync(taken, cancellationToken);
            }
            finally
            {
                lock (_gate)
                {
                    taken.Clear(_chunkBytes);
                }
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    private async Task<bool> WriteAsync(Pending chunk, CancellationToken cancellationToken)
    {
        if (!MemoryMarshal.TryGetArray(chunk.Bytes.WrittenMemory, out ArraySegment<byte> bytes))
        {
            throw new InvalidOperationException("A chunk's buffer is an array.");
        }
        string partId = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next());
        using var content = new MemoryStream(bytes.Array!, bytes.Offset, bytes.Count, writable: false);
        await using var staged = await _blobs.StageAsync(content, bytes.Count, cancellationToken)
            ?? throw new InvalidOperationException("The blob store refused a chunk within its own size.");
        await staged.CommitAsync(partId, cancellationToken);
        int failed = _kind == BatchFileKind.Error ? chunk.Lines.Count : 0;
        int completed = chunk.Lines.Count - failed;
        bool recorded = await _catalog.RecordChunkAsync(new BatchChunk
        {
            BatchId = _batch.Id,
            WorkspaceId = _batch.WorkspaceId,
            Kind = _kind,
            PartId = partId,
            Bytes = staged.Length,
            Sha256 = staged.Sha256,
            CreatedAt = _time.GetUtcNow().ToUnixTimeSeconds(),
            Lines = [.. chunk.Lines],
            Completed = completed,
            Failed = failed,
            Usage = chunk.Usage,
        }, _owner, cancellationToken);
        if (!recorded)
        {
            LeaseLost = true;
            await _blobs.DeleteAsync(partId, CancellationToken.None);
            return false;
        }
        // Counted once the catalog holds them: a chunk not recorded (a crash, a lost lease) is run again and counted then.
        _metrics?.BatchLinesEnded(completed, failed);
        return true;
    }

    public void Dispose()
    {
        _json.Dispose();
        _writing.Dispose();
    }

    /// <summary>A chunk being filled or written: its bytes, its input lines and their usage.</summary>
    private sealed class Pending
    {
        private const int InitialBytes = 64 * 1024;

        public ArrayBufferWriter<byte> Bytes { get; private set; } = new(InitialBytes);

        public List<int> Lines { get; } = [];

        public BatchUsage Usage { get; set; } = BatchUsage.None;

        /// <summary>Empties the chunk; a buffer one huge answer grew past twice the chunk size is let go.</summary>
        public void Clear(int chunkBytes)
        {
            if (Bytes.Capacity > 2L * chunkBytes)
            {
                Bytes = new ArrayBufferWriter<byte>(InitialBytes);
            }
            else
            {
                Bytes.ResetWrittenCount();
            }
            Lines.Clear();
            Usage = BatchUsage.None;
        }
    }
}
