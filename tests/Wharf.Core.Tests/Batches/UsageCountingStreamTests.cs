using System.Text;
using Wharf.Core.Batches;

namespace Wharf.Core.Tests.Batches;

public sealed class UsageCountingStreamTests
{
    private static string OutputLine(string customId, int prompt, int completion, int cached = 0, int reasoning = 0) =>
        "{\"id\":\"batch_req_1\",\"custom_id\":\"" + customId + "\",\"response\":{\"status_code\":200,\"request_id\":\"r\",\"body\":"
        + "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a \\\"usage\\\": {} in text\"},\"finish_reason\":\"stop\"}],"
        + $"\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{prompt + completion},"
        + $"\"prompt_tokens_details\":{{\"cached_tokens\":{cached}}},\"completion_tokens_details\":{{\"reasoning_tokens\":{reasoning}}}}}}}}},\"error\":null}}";

    private const string ErrorLine = """{"id":"batch_req_2","custom_id":"e","response":null,"error":{"code":"batch_expired","message":"x"}}""";

    /// <summary>Reads the stream through in reads of <paramref name="readSize"/> bytes and checks every byte came out as it went in.</summary>
    private static UsageCountingStream ReadThrough(string content, int readSize)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(content);
        var counted = new UsageCountingStream(new MemoryStream(bytes));
        var copy = new MemoryStream();
        byte[] buffer = new byte[readSize];
        int read;
        while ((read = counted.Read(buffer, 0, buffer.Length)) > 0)
        {
            copy.Write(buffer, 0, read);
        }
        Assert.Equal(bytes, copy.ToArray());
        return counted;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(100_000)]
    public void The_tokens_of_every_output_line_are_summed_whatever_the_reads_cut(int readSize)
    {
        string content = OutputLine("a", 10, 5, cached: 4) + "\n" + ErrorLine + "\r\n\n" + OutputLine("b", 7, 3, reasoning: 2); // no final newline
        var counted = ReadThrough(content, readSize);
        Assert.Equal(new BatchUsage(17, 4, 8, 2, 25), counted.Usage);
        Assert.True(counted.Complete);
    }

    [Fact]
    public async Task Async_reads_count_the_same()
    {
        byte[] bytes = Encoding.UTF8.GetBytes(OutputLine("a", 1, 2) + "\n" + OutputLine("b", 3, 4) + "\n");
        await using var counted = new UsageCountingStream(new MemoryStream(bytes));
        await counted.CopyToAsync(Stream.Null, 5);
        Assert.Equal(new BatchUsage(4, 0, 6, 0, 10), counted.Usage);
    }

    [Fact]
    public void Lines_that_are_not_output_lines_count_nothing_and_break_nothing()
    {
        string content = "not json\n{\"response\":\"text\"}\n[1,2]\n{\"response\":{\"body\":{\"usage\":{\"prompt_tokens\":\"x\"}}}}\n" + OutputLine("a", 2, 2) + "\n";
        var counted = ReadThrough(content, 3);
        Assert.Equal(new BatchUsage(2, 0, 2, 0, 4), counted.Usage);
    }

    [Fact]
    public void A_line_too_long_to_hold_is_passed_on_uncounted_and_said_so()
    {
        string longLine = OutputLine("long", 1000, 1000).Replace("a \\\"usage\\\": {} in text", new string('x', UsageCountingStream.MaxLineBytes), StringComparison.Ordinal);
        var counted = ReadThrough(longLine + "\n" + OutputLine("b", 1, 1) + "\n", 64 * 1024);
        Assert.Equal(new BatchUsage(1, 0, 1, 0, 2), counted.Usage);
        Assert.False(counted.Complete);
    }
}
