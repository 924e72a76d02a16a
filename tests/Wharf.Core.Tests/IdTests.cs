using System.Globalization;
using Wharf.Core.Ids;

namespace Wharf.Core.Tests;

public sealed class IdGeneratorTests
{
    private static readonly DateTimeOffset Instant = new(2025, 3, 14, 15, 9, 26, 535, TimeSpan.Zero);

    [Fact]
    public void HundredThousandIdsAreStrictlyIncreasingNumericallyAndAsStrings()
    {
        var generator = new IdGenerator(TimeProvider.System);
        UInt128 previous = generator.Next();
        string previousId = WharfIds.File(previous);
        for (int i = 0; i < 100_000; i++)
        {
            UInt128 next = generator.Next();
            string nextId = WharfIds.File(next);
            Assert.True(next > previous, $"value {i} did not increase");
            Assert.True(string.CompareOrdinal(nextId, previousId) > 0, $"id {nextId} is not after {previousId}");
            previous = next;
            previousId = nextId;
        }
    }

    [Fact]
    public void MonotonicWithinTheSameMillisecond()
    {
        var generator = new IdGenerator(new FixedTimeProvider(Instant));
        UInt128 previous = generator.Next();
        for (int i = 0; i < 10_000; i++)
        {
            UInt128 next = generator.Next();
            Assert.True(next > previous);
            Assert.True(string.CompareOrdinal(WharfIds.File(next), WharfIds.File(previous)) > 0);
            Assert.True(string.CompareOrdinal(WharfIds.Hex(WharfIds.BatchPrefix, next), WharfIds.Hex(WharfIds.BatchPrefix, previous)) > 0);
            previous = next;
        }
        // The clock never moved, so the timestamp stays that millisecond (the counter has ample room).
        Assert.Equal(Instant.ToUnixTimeMilliseconds(), IdGenerator.TimestampOf(previous));
    }

    [Fact]
    public void MonotonicWhenTheClockStepsBackwards()
    {
        var generator = new IdGenerator(new BackwardsTimeProvider(Instant));
        UInt128 first = generator.Next();
        UInt128 previous = first;
        for (int i = 0; i < 10_000; i++)
        {
            UInt128 next = generator.Next();
            Assert.True(next > previous);
            previous = next;
        }
        // A clock that goes back never makes the timestamp go back.
        Assert.True(IdGenerator.TimestampOf(previous) >= IdGenerator.TimestampOf(first));
    }

    [Fact]
    public void ConcurrentCallersGetDistinctValues()
    {
        var generator = new IdGenerator(new FixedTimeProvider(Instant));
        var all = new System.Collections.Concurrent.ConcurrentBag<UInt128>();
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 5_000; i++)
            {
                all.Add(generator.Next());
            }
        });
        Assert.Equal(20_000, all.Distinct().Count());
    }

    [Fact]
    public void VersionAndVariantBitsAreSet()
    {
        var generator = new IdGenerator(TimeProvider.System);
        for (int i = 0; i < 1000; i++)
        {
            UInt128 value = generator.Next();
            Assert.Equal((UInt128)7, (value >> 76) & 0xF);
            Assert.Equal((UInt128)0b10, (value >> 62) & 0b11);

            var guid = Guid.Parse(value.ToString("x32", CultureInfo.InvariantCulture));
            Assert.Equal(7, guid.Version);
        }
    }

    [Fact]
    public void VersionAndVariantBitsSurviveAFixedClock()
    {
        var generator = new IdGenerator(new FixedTimeProvider(Instant));
        for (int i = 0; i < 5000; i++)
        {
            UInt128 value = generator.Next();
            Assert.Equal((UInt128)7, (value >> 76) & 0xF);
            Assert.Equal((UInt128)0b10, (value >> 62) & 0b11);
        }
    }

    [Fact]
    public void TimestampOfRoundTripsTheMillisecond()
    {
        var generator = new IdGenerator(new FixedTimeProvider(Instant));
        UInt128 value = generator.Next();
        Assert.Equal(Instant.ToUnixTimeMilliseconds(), IdGenerator.TimestampOf(value));
    }

    [Fact]
    public void TimestampFollowsTheClock()
    {
        var clock = new ManualTimeProvider(Instant);
        var generator = new IdGenerator(clock);
        UInt128 first = generator.Next();
        clock.Advance(TimeSpan.FromSeconds(90));
        UInt128 second = generator.Next();
        Assert.Equal(Instant.ToUnixTimeMilliseconds(), IdGenerator.TimestampOf(first));
        Assert.Equal(Instant.AddSeconds(90).ToUnixTimeMilliseconds(), IdGenerator.TimestampOf(second));
        Assert.True(second > first);
    }
}

public sealed class WharfIdsTests
{
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    [Fact]
    public void FileIdIsPrefixAnd22Base62Characters()
    {
        var generator = new IdGenerator(TimeProvider.System);
        for (int i = 0; i < 1000; i++)
        {
            string id = WharfIds.File(generator.Next());
            Assert.StartsWith("file-", id, StringComparison.Ordinal);
            Assert.Equal(5 + 22, id.Length);
            Assert.All(id[5..].ToCharArray(), c => Assert.Contains(c, Base62));
            Assert.True(WharfIds.IsFileId(id));
        }
    }

    [Theory]
    [InlineData(WharfIds.UploadPrefix)]
    [InlineData(WharfIds.PartPrefix)]
    [InlineData(WharfIds.BatchPrefix)]
    [InlineData(WharfIds.BatchRequestPrefix)]
    [InlineData(WharfIds.WorkspacePrefix)]
    [InlineData(WharfIds.KeyPrefix)]
    public void HexIdIsPrefixAnd32LowercaseHexCharacters(string prefix)
    {
        var generator = new IdGenerator(TimeProvider.System);
        for (int i = 0; i < 200; i++)
        {
            string id = WharfIds.Hex(prefix, generator.Next());
            Assert.StartsWith(prefix, id, StringComparison.Ordinal);
            Assert.Equal(prefix.Length + 32, id.Length);
            Assert.All(id[prefix.Length..].ToCharArray(), c => Assert.Contains(c, "0123456789abcdef"));
            Assert.True(WharfIds.IsHexId(id, prefix));
        }
    }

    [Fact]
    public void HexIdOfSmallValuesIsZeroPadded()
    {
        Assert.Equal("ws_" + new string('0', 31) + "1", WharfIds.Hex(WharfIds.WorkspacePrefix, 1));
        Assert.Equal("key_" + new string('f', 32), WharfIds.Hex(WharfIds.KeyPrefix, UInt128.MaxValue));
    }

    [Fact]
    public void IsHexIdRejectsMalformedIds()
    {
        string good = "batch_" + new string('a', 32);
        Assert.True(WharfIds.IsHexId(good, WharfIds.BatchPrefix));
        Assert.False(WharfIds.IsHexId("batch_" + new string('A', 32), WharfIds.BatchPrefix));
        Assert.False(WharfIds.IsHexId("batch_" + new string('a', 31), WharfIds.BatchPrefix));
        Assert.False(WharfIds.IsHexId("batch_" + new string('a', 33), WharfIds.BatchPrefix));
        Assert.False(WharfIds.IsHexId("batch_" + new string('g', 32), WharfIds.BatchPrefix));
        Assert.False(WharfIds.IsHexId(good, WharfIds.UploadPrefix));
    }

    public static TheoryData<string> Base62Values => new()
    {
        "0", "1", "61", "62", "3843", "18446744073709551615", "18446744073709551616",
        "340282366920938463463374607431768211454", "340282366920938463463374607431768211455",
    };

    [Theory]
    [MemberData(nameof(Base62Values))]
    public void Base62RoundTrips(string decimalValue)
    {
        UInt128 value = UInt128.Parse(decimalValue, CultureInfo.InvariantCulture);
        string text = WharfIds.ToBase62(value);
        Assert.Equal(22, text.Length);
        Assert.True(WharfIds.TryFromBase62(text, out UInt128 back));
        Assert.Equal(value, back);
    }

    [Fact]
    public void Base62OfKnownValues()
    {
        Assert.Equal(new string('0', 22), WharfIds.ToBase62(UInt128.Zero));
        Assert.Equal(new string('0', 21) + "z", WharfIds.ToBase62(61));
        Assert.Equal(new string('0', 20) + "10", WharfIds.ToBase62(62));
        Assert.Equal(UInt128.MaxValue, WharfIds.TryFromBase62(WharfIds.ToBase62(UInt128.MaxValue), out var max) ? max : UInt128.Zero);
    }

    [Fact]
    public void Base62RoundTripsRandomValuesAndKeepsOrder()
    {
        var random = new Random(1234);
        Span<byte> bytes = stackalloc byte[16];
        for (int i = 0; i < 2000; i++)
        {
            random.NextBytes(bytes);
            var a = new UInt128(BitConverter.ToUInt64(bytes), BitConverter.ToUInt64(bytes[8..]));
            random.NextBytes(bytes);
            var b = new UInt128(BitConverter.ToUInt64(bytes), BitConverter.ToUInt64(bytes[8..]));
            Assert.True(WharfIds.TryFromBase62(WharfIds.ToBase62(a), out var back));
            Assert.Equal(a, back);
            Assert.Equal(a.CompareTo(b), Math.Sign(string.CompareOrdinal(WharfIds.ToBase62(a), WharfIds.ToBase62(b))));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("000000000000000000000")]
    [InlineData("00000000000000000000000")]
    [InlineData("000000000000000000000-")]
    [InlineData("00000000000000000000 0")]
    [InlineData("0000000000000000000000\u00e9")]
    [InlineData("zzzzzzzzzzzzzzzzzzzzzz")]
    public void TryFromBase62RejectsBadInput(string text)
    {
        Assert.False(WharfIds.TryFromBase62(text, out _));
    }

    [Fact]
    public void TryFromBase62RejectsTheSmallestOverflow()
    {
        // MaxValue + 1 written in base62: increment the last digit of MaxValue's text with carry.
        var digits = WharfIds.ToBase62(UInt128.MaxValue).ToCharArray();
        int i = digits.Length - 1;
        while (digits[i] == 'z')
        {
            digits[i] = '0';
            i--;
        }
        digits[i] = Base62[Base62.IndexOf(digits[i], StringComparison.Ordinal) + 1];
        Assert.False(WharfIds.TryFromBase62(new string(digits), out _));
    }

    [Fact]
    public void IsFileIdAcceptsWellFormedIds()
    {
        Assert.True(WharfIds.IsFileId("file-" + new string('0', 22)));
        Assert.True(WharfIds.IsFileId("file-" + WharfIds.ToBase62(UInt128.MaxValue)));
        Assert.True(WharfIds.IsFileId("file-1AbCdEfGhIjKlMnOpQrStU"));
    }

    [Fact]
    public void IsFileIdRejectsAWellFormedStringAbove128Bits()
    {
        // 22 base62 characters reach beyond 2^128: the first digit of a valid id is at most '7'.
        Assert.Equal('7', WharfIds.ToBase62(UInt128.MaxValue)[0]);
        Assert.False(WharfIds.IsFileId("file-8" + new string('0', 21)));
        Assert.False(WharfIds.IsFileId("file-AbCdEfGhIjKlMnOpQrStUv"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("file-")]
    [InlineData("File-0000000000000000000000")]
    [InlineData("files-0000000000000000000000")]
    [InlineData("file_0000000000000000000000")]
    [InlineData("upload_0000000000000000000000")]
    [InlineData("0000000000000000000000")]
    [InlineData("file-000000000000000000000")]
    [InlineData("file-00000000000000000000000")]
    [InlineData("file-000000000000000000000!")]
    [InlineData("file-00000000000000000000-0")]
    [InlineData("file-000000000000000000000 ")]
    [InlineData("file-../../../../etc/passwd")]
    [InlineData("file-zzzzzzzzzzzzzzzzzzzzzz")]
    public void IsFileIdRejectsMalformedIds(string id)
    {
        Assert.False(WharfIds.IsFileId(id));
    }
}
