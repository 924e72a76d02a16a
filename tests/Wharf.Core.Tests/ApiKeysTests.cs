using System.Security.Cryptography;
using System.Text;
using Wharf.Core.Auth;

namespace Wharf.Core.Tests;

public sealed class ApiKeysTests
{
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    [Fact]
    public void NewSecretFormat()
    {
        for (int i = 0; i < 100; i++)
        {
            string secret = ApiKeys.NewSecret();
            Assert.StartsWith("sk-wh-", secret, StringComparison.Ordinal);
            Assert.Equal(6 + 40, secret.Length);
            Assert.All(secret[6..].ToCharArray(), c => Assert.Contains(c, Base62));
        }
    }

    [Fact]
    public void NewSecretsAreUnique()
    {
        var secrets = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(secrets.Add(ApiKeys.NewSecret()));
        }
        Assert.Equal(1000, secrets.Count);
    }

    [Fact]
    public void NewSecretsUseTheWholeAlphabet()
    {
        var seen = new HashSet<char>();
        for (int i = 0; i < 1000; i++)
        {
            seen.UnionWith(ApiKeys.NewSecret()[6..]);
        }
        Assert.Equal(62, seen.Count);
    }

    [Fact]
    public void HashIsSha256OfUtf8()
    {
        const string secret = "sk-wh-abc\u00e9";
        byte[] hash = ApiKeys.Hash(secret);
        Assert.Equal(32, hash.Length);
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), hash);
        Assert.Equal(hash, ApiKeys.Hash(secret));
        Assert.NotEqual(hash, ApiKeys.Hash(secret + "x"));
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Convert.ToHexStringLower(ApiKeys.Hash("")));
    }

    [Fact]
    public void DisplayPrefixRevealsAtMostFourRandomCharacters()
    {
        for (int i = 0; i < 100; i++)
        {
            string secret = ApiKeys.NewSecret();
            string prefix = ApiKeys.DisplayPrefix(secret);
            string shown = prefix.TrimEnd('\u2026');
            Assert.StartsWith(shown, secret, StringComparison.Ordinal);
            Assert.True(shown.Length <= "sk-wh-".Length + 4, $"shows too much: {prefix}");
            Assert.DoesNotContain(secret[(6 + 4)..], prefix, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH")]
    [InlineData("my-own-bootstrap-key")]
    [InlineData("sk-wh-short")]
    [InlineData("sk-wh-0123456789012345678901234567890123456789X")]
    [InlineData("")]
    [InlineData("abcd")]
    public void DisplayPrefixOfForeignKeyRevealsNothing(string secret)
    {
        string prefix = ApiKeys.DisplayPrefix(secret);
        string shown = prefix.TrimEnd('\u2026');
        Assert.Equal("", shown);
        foreach (char c in secret)
        {
            Assert.DoesNotContain(c, prefix);
        }
    }
}
