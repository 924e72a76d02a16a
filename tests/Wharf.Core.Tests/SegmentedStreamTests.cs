using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

public sealed class SegmentedStreamTests
{
    /// <summary>Blobs in memory; counts opens and how many opened streams are not yet disposed.</summary>
    private sealed class Source
    {
        private int _open;

        public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);
        public List<string> Opened { get; } = [];
        public int Disposed { get; private set; }
        public int MaxOpenAtOnce { get; private set; }
        public int OpenNow => _open;

        public Task<Stream?> OpenAsync(string blobId, CancellationToken cancellationToken)
        {
            Opened.Add(blobId);
            if (!Blobs.TryGetValue(blobId, out var bytes))
            {
                return Task.FromResult<Stream?>(null);
            }
            _open++;
            MaxOpenAtOnce = Math.Max(MaxOpenAtOnce, _open);
            return Task.FromResult<Stream?>(new Tracked(this, bytes));
        }

        private sealed class Tracked(Source owner, byte[] bytes) : MemoryStream(bytes, writable: false)
        {
            private bool _disposed;

            protected override void Dispose(bool disposing)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    owner._open--;
                    owner.Disposed++;
                }
                base.Dispose(disposing);
            }
        }
    }

    private static readonly int[] Sizes = [5, 1, 9, 20, 3, 15];

    /// <summary>Segments of <see cref="Sizes"/> bytes, each byte distinct from its neighbours, and their concatenation.</summary>
    private static (Source Source, List<BlobSegment> Segments, byte[] All) Build(params int[] sizes)
    {
        var source = new Source();
        var segments = new List<BlobSegment>();
        var all = new List<byte>();
        for (int i = 0; i < sizes.Length; i++)
        {
            byte[] bytes = Enumerable.Range(0, sizes[i]).Select(j => (byte)((all.Count + j) * 7 + i)).ToArray();
            string id = $"part_{i:x32}";
            source.Blobs[id] = bytes;
            segments.Add(new BlobSegment(id, bytes.Length));
            all.AddRange(bytes);
        }
        return (source, segments, all.ToArray());
    }

    private static byte[] ReadToEnd(Stream stream, int bufferSize, bool useAsync)
    {
        var result = new MemoryStream();
        byte[] buffer = new byte[bufferSize];
        int read;
        while ((read = useAsync ? stream.ReadAsync(buffer, 0, bufferSize).GetAwaiter().GetResult() : stream.Read(buffer, 0, bufferSize)) > 0)
        {
            result.Write(buffer, 0, read);
        }
        return result.ToArray();
    }

    [Fact]
    public void LengthIsTheSumOfTheSegmentsAndOpensNothing()
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(53, stream.Length);
        Assert.Equal(all.Length, stream.Length);
        Assert.Equal(0, stream.Position);
        Assert.True(stream.CanRead);
        Assert.True(stream.CanSeek);
        Assert.False(stream.CanWrite);
        Assert.Empty(source.Opened);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    [InlineData(7, true)]
    [InlineData(13, false)]
    [InlineData(64, true)]
    [InlineData(4097, false)]
    public void ReadingEverythingGivesTheConcatenation(int bufferSize, bool useAsync)
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(all, ReadToEnd(stream, bufferSize, useAsync));
        Assert.Equal(all.Length, stream.Position);
        Assert.Equal(segments.Select(s => s.BlobId), source.Opened);
    }

    [Fact]
    public async Task CopyToAsyncOfLargerSegmentsGivesTheConcatenation()
    {
        var (source, segments, all) = Build(100_000, 1, 70_001, 3);
        await using var stream = new SegmentedStream(segments, source.OpenAsync);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(all, copy.ToArray());
    }

    [Fact]
    public void SeekingToEveryOffsetThenReadingGivesTheRest()
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        for (int offset = 0; offset <= all.Length; offset++)
        {
            Assert.Equal(offset, stream.Seek(offset, SeekOrigin.Begin));
            Assert.Equal(offset, stream.Position);
            Assert.Equal(all[offset..], ReadToEnd(stream, 4, useAsync: offset % 2 == 0));
        }
        // Backwards too, through the Position setter, so every read follows a seek back into an open segment or an earlier one.
        for (int offset = all.Length; offset >= 0; offset--)
        {
            stream.Position = offset;
            int length = Math.Min(6, all.Length - offset);
            byte[] buffer = new byte[6];
            int got = 0;
            int read;
            while (got < length && (read = stream.Read(buffer, got, length - got)) > 0)
            {
                got += read;
            }
            Assert.Equal(length, got);
            Assert.Equal(all[offset..(offset + length)], buffer[..length]);
        }
        Assert.Equal(1, source.MaxOpenAtOnce);
    }

    [Fact]
    public void RandomSeeksInsideAndAtTheBoundariesOfSegments()
    {
        var (source, segments, all) = Build(Sizes);
        // Segment starts: 0, 5, 6, 15, 35, 38.
        int[] offsets = [5, 4, 6, 15, 14, 35, 38, 52, 0, 37, 36, 7, 20, 20, 2, 51];
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        foreach (int offset in offsets)
        {
            stream.Position = offset;
            Assert.Equal(all[offset], (byte)stream.ReadByte());
            Assert.Equal(offset + 1, stream.Position);
        }
        Assert.Equal(1, source.MaxOpenAtOnce);
    }

    [Fact]
    public void SeekFromCurrentAndFromEnd()
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(all.Length - 10, stream.Seek(-10, SeekOrigin.End));
        Assert.Equal(all[^10], (byte)stream.ReadByte());
        Assert.Equal(all.Length - 20, stream.Seek(-11, SeekOrigin.Current));
        Assert.Equal(all[^20], (byte)stream.ReadByte());
        Assert.Equal(all.Length - 17, stream.Seek(2, SeekOrigin.Current));
        Assert.Equal(all[^17..], ReadToEnd(stream, 5, useAsync: true));
    }

    [Fact]
    public async Task ReadingAtOrPastTheEndReturnsZero()
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        byte[] buffer = new byte[10];
        stream.Position = all.Length;
        Assert.Equal(0, stream.Read(buffer, 0, buffer.Length));
        Assert.Equal(0, await stream.ReadAsync(buffer.AsMemory()));
        stream.Position = all.Length + 100;
        Assert.Equal(0, stream.Read(buffer, 0, buffer.Length));
        Assert.Equal(all.Length + 100, stream.Position);
        // After reading to the end, further reads are 0 too.
        stream.Position = all.Length - 2;
        Assert.Equal(all[^2..], ReadToEnd(stream, 10, useAsync: false));
        Assert.Equal(0, stream.Read(buffer, 0, buffer.Length));
        Assert.Equal(-1, stream.ReadByte());
    }

    [Fact]
    public void NegativePositionIsRefused()
    {
        var (source, segments, _) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Throws<ArgumentOutOfRangeException>(() => stream.Seek(-1, SeekOrigin.Begin));
        Assert.Throws<ArgumentOutOfRangeException>(() => stream.Seek(-54, SeekOrigin.End));
        Assert.Throws<ArgumentOutOfRangeException>(() => stream.Position = -1);
        Assert.Equal(0, stream.Position);
    }

    [Fact]
    public void WritingIsNotSupported()
    {
        var (source, segments, _) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Throws<NotSupportedException>(() => stream.Write([1, 2], 0, 2));
        Assert.Throws<NotSupportedException>(() => stream.SetLength(3));
    }

    [Fact]
    public async Task AMissingSegmentThrowsIOExceptionWhenReached()
    {
        var (source, segments, all) = Build(Sizes);
        source.Blobs.Remove(segments[2].BlobId);
        await using var stream = new SegmentedStream(segments, source.OpenAsync);
        byte[] buffer = new byte[6];
        // The first two segments (6 bytes) read fine.
        await stream.ReadExactlyAsync(buffer.AsMemory(0, 6));
        Assert.Equal(all[..6], buffer);
        await Assert.ThrowsAsync<IOException>(async () => await stream.ReadExactlyAsync(buffer.AsMemory(0, 1)));
        Assert.Throws<IOException>(() => stream.Read(buffer, 0, 1));
        // Seeking straight to a later segment still works.
        stream.Position = 15;
        Assert.Equal(all[15], (byte)stream.ReadByte());
    }

    [Fact]
    public void AfterAMissingSegmentTheEarlierSegmentsCanStillBeRead()
    {
        var (source, segments, all) = Build(Sizes);
        source.Blobs.Remove(segments[2].BlobId);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        stream.Position = 5;
        Assert.Equal(all[5], (byte)stream.ReadByte());
        Assert.Throws<IOException>(() => stream.ReadByte());
        // Back into segment 1, whose stream was closed when segment 2 failed to open.
        stream.Position = 5;
        Assert.Equal(all[5], (byte)stream.ReadByte());
    }

    [Fact]
    public async Task ASegmentShorterThanRecordedThrowsIOException()
    {
        var (source, segments, all) = Build(Sizes);
        // Segment 3 (offsets 15..35) lost its last 4 bytes.
        source.Blobs[segments[3].BlobId] = source.Blobs[segments[3].BlobId][..16];
        await using var stream = new SegmentedStream(segments, source.OpenAsync);
        var copy = new MemoryStream();
        byte[] buffer = new byte[3];
        var ex = await Assert.ThrowsAsync<IOException>(async () =>
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                copy.Write(buffer, 0, read);
            }
        });
        Assert.NotNull(ex);
        // Everything before the gap was served, nothing after it.
        Assert.Equal(all[..31], copy.ToArray());
        // Reading past the gap from within the short segment fails too, rather than returning 0 as if the file ended.
        stream.Position = 33;
        Assert.Throws<IOException>(() => stream.ReadByte());
    }

    [Fact]
    public void OnlyTheRecordedLengthOfASegmentIsRead()
    {
        var (source, segments, all) = Build(Sizes);
        source.Blobs[segments[1].BlobId] = [.. source.Blobs[segments[1].BlobId], 0xEE, 0xEE, 0xEE];
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(all, ReadToEnd(stream, 8, useAsync: false));
    }

    [Fact]
    public async Task AtMostOneSegmentStreamIsOpenAtATimeAndDisposeClosesIt()
    {
        var (source, segments, all) = Build(Sizes);
        var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(all, ReadToEnd(stream, 3, useAsync: true));
        stream.Position = 7;
        stream.ReadByte();
        stream.Position = 40;
        stream.ReadByte();
        Assert.Equal(1, source.MaxOpenAtOnce);
        Assert.Equal(1, source.OpenNow);
        Assert.Equal(source.Opened.Count - 1, source.Disposed);
        await stream.DisposeAsync();
        Assert.Equal(0, source.OpenNow);
        Assert.Equal(source.Opened.Count, source.Disposed);

        var second = new SegmentedStream(segments, source.OpenAsync);
        second.Position = 20;
        second.ReadByte();
        Assert.Equal(1, source.OpenNow);
        second.Dispose();
        Assert.Equal(0, source.OpenNow);
    }

    [Fact]
    public void ReadingWithinOneSegmentOpensItOnce()
    {
        var (source, segments, all) = Build(Sizes);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        stream.Position = 16;
        byte[] buffer = new byte[4];
        Assert.Equal(4, stream.Read(buffer, 0, 4));
        stream.Position = 15;
        Assert.Equal(4, stream.Read(buffer, 0, 4));
        Assert.Equal(all[15..19], buffer);
        Assert.Equal([segments[3].BlobId], source.Opened);
    }

    [Fact]
    public void NoSegmentsIsAnEmptyStream()
    {
        var source = new Source();
        using var stream = new SegmentedStream([], source.OpenAsync);
        Assert.Equal(0, stream.Length);
        Assert.Equal(0, stream.Read(new byte[8], 0, 8));
        Assert.Equal(-1, stream.ReadByte());
        Assert.Empty(source.Opened);
    }

    [Fact]
    public void EmptySegmentsAreSkipped()
    {
        var (source, segments, all) = Build(0, 4, 0, 0, 3, 0);
        using var stream = new SegmentedStream(segments, source.OpenAsync);
        Assert.Equal(7, stream.Length);
        Assert.Equal(all, ReadToEnd(stream, 2, useAsync: false));
        for (int offset = 0; offset < all.Length; offset++)
        {
            stream.Position = offset;
            Assert.Equal(all[offset], (byte)stream.ReadByte());
        }
    }
}
