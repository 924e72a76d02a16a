namespace Wharf.Core.Ids;

/// <summary>Formats and parses Wharf's ids: a prefix and a time-ordered 128-bit value of fixed width.</summary>
public static class WharfIds
{
    public const string FilePrefix = "file-";
    public const string UploadPrefix = "upload_";
    public const string PartPrefix = "part_";
    public const string BatchPrefix = "batch_";
    public const string BatchRequestPrefix = "batch_req_";
    public const string WorkspacePrefix = "ws_";
    public const string KeyPrefix = "key_";
    public const string EventPrefix = "evt_";

    public const int Base62Width = 22;
    public const int HexWidth = 32;

    private const string Base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary><c>file-</c> + 22 base62 characters; string order equals numeric order.</summary>
    public static string File(UInt128 value) => FilePrefix + ToBase62(value);

    /// <summary><paramref name="prefix"/> + 32 lowercase hex characters.</summary>
    public static string Hex(string prefix, UInt128 value) => prefix + value.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);

    public static bool IsFileId(ReadOnlySpan<char> id)
    {
        if (!id.StartsWith(FilePrefix, StringComparison.Ordinal) || id.Length != FilePrefix.Length + Base62Width)
        {
            return false;
        }
        return TryFromBase62(id[FilePrefix.Length..], out _);
    }

    public static bool IsHexId(ReadOnlySpan<char> id, string prefix)
    {
        if (!id.StartsWith(prefix, StringComparison.Ordinal) || id.Length != prefix.Length + HexWidth)
        {
            return false;
        }
        foreach (char c in id[prefix.Length..])
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }

    public static string ToBase62(UInt128 value)
    {
        return string.Create(Base62Width, value, static (span, v) =>
        {
            for (int i = span.Length - 1; i >= 0; i--)
            {
                (v, UInt128 rem) = UInt128.DivRem(v, 62);
                span[i] = Base62Alphabet[(int)rem];
            }
        });
    }

    public static bool TryFromBase62(ReadOnlySpan<char> text, out UInt128 value)
    {
        value = 0;
        if (text.Length != Base62Width)
        {
            return false;
        }
        foreach (char c in text)
        {
            int digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'A' and <= 'Z' => c - 'A' + 10,
                >= 'a' and <= 'z' => c - 'a' + 36,
                _ => -1,
            };
            if (digit < 0)
            {
                return false;
            }
            // Overflow check: 62^22 exceeds 2^128, so some well-formed strings are out of range.
            if (value > (UInt128.MaxValue - (UInt128)digit) / 62)
            {
                return false;
            }
            value = value * 62 + (UInt128)digit;
        }
        return true;
    }
}
