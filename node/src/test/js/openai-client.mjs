// The official openai client against a dsd node: node openai-client.mjs BASEURL MODEL
// BASEURL is the OpenAI base URL, e.g. http://127.0.0.1:8080/v1. Prints one JSON line with what the
// client made of the answers; HttpApiOpenAiClientTest checks it against the generator.
import OpenAI from 'openai'

const [baseURL, model] = process.argv.slice(2)
if (!baseURL || !model) {
  console.error('usage: node openai-client.mjs BASEURL MODEL')
  process.exit(2)
}
// No retries: a refusal must show up in the test, not be papered over.
const client = new OpenAI({ baseURL, apiKey: 'unused-by-dsd', maxRetries: 0, timeout: 60_000 })

async function streamedChat () {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'system', content: 'You write Python.' }, { role: 'user', content: 'def f(x):' }],
    max_tokens: 16,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true }
  })
  const out = { role: null, text: '', finishReason: null, usage: null, chunks: 0, ids: new Set() }
  for await (const chunk of stream) {
    out.chunks++
    out.ids.add(chunk.id)
    if (chunk.usage) out.usage = chunk.usage
    for (const choice of chunk.choices) {
      if (choice.delta?.role) out.role = choice.delta.role
      if (choice.delta?.content) out.text += choice.delta.content
      if (choice.finish_reason) out.finishReason = choice.finish_reason
    }
  }
  return { ...out, ids: out.ids.size }
}

async function completion () {
  const c = await client.completions.create({ model, prompt: 'def f(x):', max_tokens: 12, temperature: 0 })
  return { object: c.object, text: c.choices[0].text, finishReason: c.choices[0].finish_reason, usage: c.usage }
}

// penalties and logprobs as a client sends them; the test compares with the generator's own values
async function penalizedWithLogprobs () {
  const c = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'def f(x):' }],
    max_tokens: 10,
    temperature: 0,
    presence_penalty: 1.5,
    frequency_penalty: 0.5,
    logprobs: true,
    top_logprobs: 2
  })
  const content = c.choices[0].logprobs.content
  return {
    text: c.choices[0].message.content,
    logprobs: content.map(t => t.logprob),
    tops: content.map(t => t.top_logprobs.length)
  }
}

async function unknownModel () {
  try {
    await client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 })
    return { refused: false }
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) throw e
    return { refused: true, notFound: e instanceof OpenAI.NotFoundError, status: e.status, code: e.code, param: e.param }
  }
}

try {
  const models = (await client.models.list()).data.map(m => m.id)
  const result = { models, chat: await streamedChat(), completion: await completion(), penalized: await penalizedWithLogprobs(),
    unknownModel: await unknownModel() }
  console.log(JSON.stringify(result))
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.stack ?? e) }))
  process.exit(1)
}
