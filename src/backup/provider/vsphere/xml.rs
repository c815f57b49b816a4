//! A small tree of a SOAP response (quick-xml underneath): elements by
//! local name, their text and attributes. vim25 answers are outside input:
//! a malformed one is an error, never a panic.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (no namespace prefix).
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The first element named `name` here or anywhere below, depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every element named `name` below (not inside one another's match).
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            } else {
                c.find_all(name, out);
            }
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.into_owned(),
    }
}

/// Parses `text` into its root element (at most 64 MiB, 256 levels deep).
pub fn parse(text: &str) -> Result<Element, String> {
    if text.len() > 64 << 20 {
        return Err("the answer is larger than 64 MiB".into());
    }
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event() {
            Err(e) => return Err(format!("not XML at byte {}: {e}", reader.buffer_position())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(start)) => {
                if stack.len() > 256 {
                    return Err("the answer nests deeper than 256 elements".into());
                }
                let mut element = Element {
                    name: local(start.name().as_ref()),
                    ..Element::default()
                };
                for a in start.attributes().flatten() {
                    let value = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    element.attrs.push((local(a.key.as_ref()), value));
                }
                stack.push(element);
            }
            Ok(Event::Empty(start)) => {
                let mut element = Element {
                    name: local(start.name().as_ref()),
                    ..Element::default()
                };
                for a in start.attributes().flatten() {
                    let value = a
                        .unescape_value()
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    element.attrs.push((local(a.key.as_ref()), value));
                }
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(element);
                }
            }
            Ok(Event::Text(t)) => {
                let t = t.unescape().map(|t| t.into_owned()).unwrap_or_default();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Ok(Event::CData(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::End(_)) => {
                if stack.len() < 2 {
                    return Err("an end tag without its start".into());
                }
                let done = stack.pop().expect("checked");
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(done);
                }
            }
            Ok(_) => {}
        }
    }
    if stack.len() != 1 {
        return Err("the answer ends inside an element".into());
    }
    let root = stack.pop().expect("one left");
    root.children
        .into_iter()
        .next()
        .ok_or_else(|| "an empty answer".to_string())
}

/// `text` with XML's five special characters escaped, for a request body.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_by_local_name() {
        let doc = parse(r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="x"><soapenv:Body><R><returnval type="Task">task-1</returnval><b/><c>a &amp; b</c></R></soapenv:Body></soapenv:Envelope>"#).unwrap();
        let rv = doc.find("returnval").unwrap();
        assert_eq!(
            (rv.text.as_str(), rv.attr("type")),
            ("task-1", Some("Task"))
        );
        assert_eq!(doc.find("c").unwrap().text, "a & b");
        assert!(doc.find("b").is_some());
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        assert_eq!(escape("<x & 'y'>"), "&lt;x &amp; &apos;y&apos;&gt;");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs(text in "(<[a-z:]{1,5}( t=\"[a-z]{0,3}\")?>|</[a-z:]{1,5}>|<[a-z]{1,3}/>|[a-z &;]{0,5}){0,40}") {
            let _ = parse(&text);
        }
    }
}
