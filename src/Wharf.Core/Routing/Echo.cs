using System.Globalization;
using System.Text;

namespace Wharf.Core.Routing;

/// <summary>A name from a request (a provider, a model) as an error message quotes it.</summary>
internal static class Echo
{
    private const int MaxLength = 64;

    /// <summary>
    /// At most 64 characters of <paramref name="text"/> (then <c>...</c>); printable ASCII other than markup and
    /// quoting characters as it is, anything else as a <c>\uXXXX</c> escape, so a hostile value is never repeated
    /// as it came, whatever reads the message.
    /// </summary>
    public static string Safe(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, MaxLength) + 8);
        int count = Math.Min(text.Length, MaxLength);
        for (int i = 0; i < count; i++)
        {
            char c = text[i];
            if (c is >= ' ' and <= '~' and not ('<' or '>' or '&' or '\'' or '"' or '\\' or '`'))
            {
                builder.Append(c);
            }
            else
            {
                builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            }
        }
        return text.Length > MaxLength ? builder.Append("...").ToString() : builder.ToString();
    }
}
