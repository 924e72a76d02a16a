using System.Net.Http.Json;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Webhooks;

/// <summary>What the webhook functional tests share: a workspace with a webhook URL, and its key.</summary>
public static class WebhookKit
{
    /// <summary>Creates a workspace with <paramref name="webhookUrl"/> and one key; returns its id, its webhook secret, the key and a client with it.</summary>
    public static async Task<(string WorkspaceId, string Secret, string Key, HttpClient Client)> NewTenantAsync(WharfServer server, string name, string webhookUrl)
    {
        using var admin = new Admin(server);
        using var response = await admin.Client.PostAsJsonAsync("/admin/workspaces", new { name, webhook_url = webhookUrl });
        var workspace = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, workspace.ToString());
        string id = workspace.GetProperty("id").GetString()!;
        var (_, key) = await admin.CreateKeyAsync(id);
        return (id, workspace.GetProperty("webhook_secret").GetString()!, key, server.CreateClient(key));
    }

    public static JsonElement Parse(WebhookReceiver.Received request)
    {
        using var document = JsonDocument.Parse(request.Body);
        return document.RootElement.Clone();
    }

    /// <summary>Waits (at most 60 s) for a request about <paramref name="batchId"/>; returns every one about it so far.</summary>
    public static async Task<List<WebhookReceiver.Received>> WaitForEventAboutAsync(WebhookReceiver receiver, string batchId, int count = 1)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var about = receiver.Requests.Where(r => IsAbout(r, batchId)).ToList();
            if (about.Count >= count)
            {
                return about;
            }
            Assert.True(DateTime.UtcNow < deadline, $"{about.Count} events about {batchId}, not {count}.");
            await Task.Delay(20);
        }
    }

    public static bool IsAbout(WebhookReceiver.Received request, string batchId)
    {
        try
        {
            return Parse(request).GetProperty("data").GetProperty("id").GetString() == batchId;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return false;
        }
    }
}
