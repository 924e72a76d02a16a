using System.Collections.Concurrent;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Microsoft.Extensions.Logging;

namespace Wharf.Storage.Tests.S3;

/// <summary>
/// A non-seekable content of any length whose byte at each position is a fixed function of the position, so that a
/// test can stream gigabytes without holding them and check any range it reads back.
/// </summary>
internal sealed class GeneratedContent(long length, int seed) : Stream
{
    private long _position;

    /// <summary>Bytes the content would have from <paramref name="offset"/>.</summary>
    public static void Fill(Span<byte> buffer, long offset, int seed)
    {
        for (int i = 0; i < buffer.Length; i++)
        {
            long p = offset + i;
            ulong z = (ulong)(p >> 3) * 0x9E3779B97F4A7C15UL + (ulong)seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            buffer[i] = (byte)(z >> (int)(8 * (p & 7)));
        }
    }

    public static byte[] Range(long offset, int count, int seed)
    {
        var bytes = new byte[count];
        Fill(bytes, offset, seed);
        return bytes;
    }

    public static string Sha256(long length, int seed)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1024 * 1024];
        for (long offset = 0; offset < length; offset += buffer.Length)
        {
            int count = (int)Math.Min(buffer.Length, length - offset);
            Fill(buffer.AsSpan(0, count), offset, seed);
            hash.AppendData(buffer, 0, count);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Called (and awaited) when a read would pass this position; the read waits meanwhile.</summary>
    public long PauseAt { get; init; } = long.MaxValue;

    public Func<Task>? OnPause { get; init; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position == PauseAt && OnPause is { } pause)
        {
            await pause();
        }
        long end = Math.Min(length, _position + buffer.Length);
        if (_position < PauseAt && end > PauseAt)
        {
            end = PauseAt;
        }
        int count = (int)(end - _position);
        Fill(buffer.Span[..count], _position, seed);
        _position = end;
        return count;
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>The S3 calls a client makes (each attempt), by request type, as the SDK raises them before sending.</summary>
internal sealed class S3Calls
{
    private readonly ConcurrentQueue<(string Call, string Detail)> _calls = new();

    public S3Calls(AmazonS3Client client) => client.BeforeRequestEvent += (_, e) =>
    {
        if (e is WebServiceRequestEventArgs args)
        {
            string detail = args.Request switch
            {
                Amazon.S3.Model.GetObjectRequest get => get.Key + " " + get.ByteRange?.FormattedByteRange,
                Amazon.S3.Model.PutObjectRequest put => put.Key,
                _ => "",
            };
            _calls.Enqueue((args.Request.GetType().Name.Replace("Request", "", StringComparison.Ordinal), detail));
        }
    };

    public void Clear() => _calls.Clear();

    public List<string> Names => _calls.Select(c => c.Call).ToList();

    public List<string> Details(string call) => _calls.Where(c => c.Call == call).Select(c => c.Detail).ToList();

    public int Count(string call) => _calls.Count(c => c.Call == call);
}

/// <summary>A logger that keeps what it is given.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _entries = new();

    public List<(LogLevel Level, string Message)> Entries => [.. _entries];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _entries.Enqueue((logLevel, formatter(state, exception)));
}
