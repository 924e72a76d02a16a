using System.Security.Cryptography;

namespace Wharf.Core.Ids;

/// <summary>
/// Generates time-ordered 128-bit values laid out as UUIDv7 (RFC 9562): 48 bits of Unix milliseconds,
/// version and variant bits, and 74 bits that start random in each new millisecond and are incremented
/// within the same millisecond (RFC 9562 §6.2, method 2), so a later value is always greater on this node.
/// </summary>
public sealed class IdGenerator
{
    private const int RandomBits = 74;
    private static readonly UInt128 RandomMask = (UInt128.One << RandomBits) - 1;

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private long _lastMs = -1;
    private UInt128 _lastRandom;

    public IdGenerator(TimeProvider time) => _time = time;

    /// <summary>The next value; strictly greater than every value this instance returned before.</summary>
    public UInt128 Next()
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            if (now > _lastMs)
            {
                _lastMs = now;
                // Leave the top bit of the random field clear so the counter has room to grow within a millisecond.
                _lastRandom = FreshRandom() & (RandomMask >> 1);
            }
            else
            {
                // Same millisecond (or the clock stepped back): count on from the last value.
                _lastRandom++;
                if (_lastRandom > RandomMask)
                {
                    _lastMs++;
                    _lastRandom = FreshRandom() & (RandomMask >> 1);
                }
            }
            return Compose(_lastMs, _lastRandom);
        }
    }

    /// <summary>Milliseconds since the Unix epoch held in a value made by <see cref="Next"/>.</summary>
    public static long TimestampOf(UInt128 value) => (long)(value >> 80);

    private static UInt128 Compose(long ms, UInt128 random)
    {
        // Layout: unix_ts_ms(48) | ver(4)=7 | rand_a(12) | var(2)=0b10 | rand_b(62)
        UInt128 randA = (random >> 62) & 0xFFF;
        UInt128 randB = random & ((UInt128.One << 62) - 1);
        return ((UInt128)(ulong)ms << 80) | ((UInt128)0x7 << 76) | (randA << 64) | ((UInt128)0x2 << 62) | randB;
    }

    private static UInt128 FreshRandom()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return new UInt128(BitConverter.ToUInt64(bytes), BitConverter.ToUInt64(bytes[8..])) & RandomMask;
    }
}
