using System.CommandLine;
using System.Globalization;

namespace Wharf.Cli;

/// <summary>An option holding a count (<c>--limit</c>): a whole number ≥ 1, with a plain message when it is not.</summary>
internal static class CountOption
{
    public static Option<int?> Create(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value >= 1)
            {
                return value;
            }
            result.AddError($"{name} must be a whole number of at least 1, not '{text}'.");
            return null;
        },
    };
}
