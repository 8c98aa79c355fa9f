// Renders Evolution API 2.3.6 log records for tests/data/log_corpus.txt that the real server cannot print
// here (they need WhatsApp, or a Dify bot answering a customer's message, or Redis).
//
// `consoleLine` is the body of `Logger.console` from upstream src/config/logger.config.ts (2.3.6),
// unchanged but for its inputs (context, instance, colour, pid, clock): Node's own console.log and
// util.inspect do the formatting, as in the real server. Run: TZ=America/Sao_Paulo node render_evolution_logs.js
'use strict';

const Color = {
  LOG: '\x1b[32m', INFO: '\x1b[34m', WARN: '\x1b[33m', ERROR: '\x1b[31m', DEBUG: '\x1b[36m', VERBOSE: '\x1b[37m',
  DARK: '\x1b[30m',
};
const Command = { RESET: '\x1b[0m', BRIGHT: '\x1b[1m', UNDERSCORE: '\x1b[4m' };
const Level = Object.fromEntries(Object.entries(Color).map(([k, v]) => [k, v + '%s' + Command.RESET]));
const Background = {
  LOG: '\x1b[42m', INFO: '\x1b[44m', WARN: '\x1b[43m', DARK: '\x1b[40m', ERROR: '\x1b[41m', DEBUG: '\x1b[46m',
  VERBOSE: '\x1b[47m',
};
const version = '2.3.6';
const pid = '1';
let clock = Date.UTC(2026, 11, 1, 3, 22, 25);
const formatDateLog = (timestamp) => new Date(timestamp).toString().replace(/\sGMT.+/, '');

function consoleLine(context, instance, color, type, value) {
  clock += 1000;
  const typeValue = typeof value;
  if (color) {
    console.log(
      Command.BRIGHT + Level[type], '[Evolution API]', Command.BRIGHT + Color[type], instance ? `[${instance}]` : '',
      Command.BRIGHT + Color[type], `v${version}`, Command.BRIGHT + Color[type], pid, Command.RESET,
      Command.BRIGHT + Color[type], '-', Command.BRIGHT + Color.VERBOSE, `${formatDateLog(clock)}  `, Command.RESET,
      Color[type] + Background[type] + Command.BRIGHT, `${type} ` + Command.RESET, Color.WARN + Command.BRIGHT,
      `[${context}]` + Command.RESET, Color[type] + Command.BRIGHT, `[${typeValue}]` + Command.RESET, Color[type],
      typeValue !== 'object' ? value : '', Command.RESET,
    );
    typeValue === 'object' ? console.log(value, '\n') : '';
  } else {
    console.log(
      '[Evolution API]', instance ? `[${instance}]` : '', pid, '-', `${formatDateLog(clock)}  `, `${type} `,
      `[${context}]`, `[${typeValue}]`, value,
    );
  }
}

function record(rule, context, instance, type, value, color = true) {
  console.log(`### ${rule}`);
  consoleLine(context, instance, color, type, value);
}

// Errors as Node prints them: a real stack under the message, the extra fields axios and Boom add.
function boom(message, statusCode) {
  const error = new Error(message);
  error.stack = `Error: ${message}\n    at WebSocketClient.<anonymous> (/evolution/node_modules/baileys/lib/Socket/socket.js:50:19)`;
  Object.assign(error, {
    data: null, isBoom: true, isServer: false,
    output: { statusCode, payload: { statusCode, error: 'Precondition Required', message }, headers: {} },
  });
  return error;
}

class AxiosError extends Error {}

function axiosRefused(url) {
  const error = new AxiosError(`connect ECONNREFUSED ${url}`);
  error.stack = `AxiosError: connect ECONNREFUSED ${url}\n    at AxiosError.from (/evolution/node_modules/axios/dist/node/axios.cjs:876:14)\n    at RedirectableRequest.handleRequestError (/evolution/node_modules/axios/dist/node/axios.cjs:3156:25)`;
  Object.assign(error, {
    code: 'ECONNREFUSED',
    config: {
      method: 'post',
      url: `http://${url}/v1/chat-messages`,
      // the app's key and the instance token travel in every Dify call: a real dump prints them
      headers: { Accept: 'application/json, text/plain, */*', Authorization: 'Bearer <DIFY_API_KEY>' },
      data: '{"inputs":{"remoteJid":"5511987600001@s.whatsapp.net","pushName":"Ana","instanceName":"loja","apiKey":"<INSTANCE_TOKEN>"},"query":"Oi","response_mode":"blocking","user":"5511987600001@s.whatsapp.net"}',
    },
  });
  return error;
}

function syntaxError() {
  const error = new SyntaxError('Unexpected end of JSON input');
  error.stack = 'SyntaxError: Unexpected end of JSON input\n    at JSON.parse (<anonymous>)\n    at DifyService.sendMessageToBot (/evolution/dist/main.js:272:1043)';
  return error;
}

const hint =
  ' You have requested this URI [/v1/chat-messages] but did you mean /v1/chat-messages/<string:task_id>/stop ?';
for (const color of [true, false]) {
  const mode = color ? 'LOG_COLOR=true' : 'LOG_COLOR=false';
  console.log(`# --- Evolution API 2.3.6, ${mode}: rendered by tests/data/render_evolution_logs.js ---`);
  const r = (rule, context, instance, type, value) => record(rule, context, instance, type, value, color);
  // whatsapp.baileys.service.ts:451 (connection 'open')
  r('none', 'ChannelStartupService', 'loja', 'INFO', `
        ┌──────────────────────────────┐
        │    CONNECTED TO WHATSAPP     │
        └──────────────────────────────┘`.replace(/^ +/gm, '  '));
  // dify.service.ts:316 `this.logger.error(error.response?.data || error)`: Dify's error body, or the error.
  r('dify_error', 'DifyService', '', 'ERROR', {
    code: 'not_found', message: 'Conversation Not Exists.' + hint, status: 404,
  });
  r('dify_error', 'DifyService', '', 'ERROR', {
    code: 'internal_server_error', message: 'Internal Server Error, please contact support.', status: 500,
  });
  r('dify_error', 'DifyService', '', 'ERROR', {
    code: 'invalid_param', message: 'Run failed: Reached maximum retries (0) for URL http://127.0.0.1:18083/oi', status: 400,
  });
  r('dify_error', 'DifyService', '', 'ERROR', { code: 'unauthorized', message: 'Access token is invalid', status: 401 });
  r('dify_error', 'DifyService', '', 'ERROR', axiosRefused('127.0.0.1:5001'));
  r('dify_error', 'DifyService', '', 'ERROR',
    '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>');
  r('dify_error', 'DifyService', '', 'ERROR', 'No Dify endpoint defined');
  r('dify_stream_parse_error', 'DifyService', '', 'ERROR', syntaxError());
  r('error', 'DifyService', '', 'ERROR', '[Dify] Failed to transcribe audio: Error: Request failed with status code 401');
  r('none', 'DifyService', '', 'DEBUG', '[Dify] Downloading audio for Whisper transcription');
  // baileys sending the reply failed inside sendMessageToBot: a WhatsApp fault, under DifyService's name
  r('whatsapp_connection_closed', 'DifyService', '', 'ERROR', boom('Connection Closed', 428));
  r('whatsapp_connection_closed', 'ChannelStartupService', 'loja', 'ERROR', boom('Connection Closed', 428));
  // monitor.service.ts:386, :367, :407
  r('whatsapp_logged_out', 'WAMonitoringService', '', 'WARN', 'Instance "loja" - LOGOUT');
  r('none', 'WAMonitoringService', '', 'WARN', 'Instance "vendas" - REMOVED');
  r('whatsapp_connection_closed', 'WAMonitoringService', '', 'WARN', 'Instance "loja" - NOT CONNECTION');
  // rediscache.client.ts:33 (needs CACHE_REDIS_ENABLED), main.ts:102 (with WEBHOOK_EVENTS_ERRORS)
  r('redis_error', 'Redis', '', 'ERROR', 'redis disconnected');
  // a 500 whose cause is not a closed WhatsApp socket (the captured one is: see the real sections)
  r('http_500', 'SERVER', '', 'ERROR', {
    event: 'error',
    data: {
      error: 'Internal Server Error', message: "Cannot read properties of undefined (reading 'textMessage')",
      status: 500, response: { message: "Cannot read properties of undefined (reading 'textMessage')" },
    },
    date_time: '2026-12-01T00:22:40.123Z', api_key: '<AUTHENTICATION_API_KEY>', server_url: 'http://127.0.0.1:8080',
  });
  r('none', 'BaileysMessageProcessor', '', 'LOG', 'Processing batch of 1 messages');
  r('none', 'ChatbotController', '', 'WARN', 'Ignoring message from group: 120363025246125244@g.us');
}
